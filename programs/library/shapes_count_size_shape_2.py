"""Question: How many small cubes are there?
Answer: a number as digits
Qtype: count_simple
Template: How many {size} {shape}s are there?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    cube_patches = image_patch.find("small cube")
    return str(len(cube_patches))
