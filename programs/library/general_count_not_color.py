"""Question: How many cubes are not red?
Answer: a number as digits
Qtype: count_complex
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    cube_patches = image_patch.find("cube")
    count = 0
    for patch in cube_patches:
        if patch.simple_query("What color is the cube?") != "red":
            count = count + 1
    return str(count)
