"""Question: How many objects have the same color as the small cube?
Answer: a number as digits (the cube itself is not counted)
Qtype: count_complex
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    small_cube = image_patch.find("small cube")[0]
    color = small_cube.simple_query("What color is the cube?")
    same = image_patch.find(color + " object")
    return str(len(same) - 1)
