"""Question: How many triangles are there?
Answer: a number as digits
Qtype: count_simple
Template: How many {shape}s are there?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    triangle_patches = image_patch.find("triangle")
    return str(len(triangle_patches))
