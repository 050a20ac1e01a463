"""Question: How many spheres are there?
Answer: a number as digits
Qtype: count_simple
Template: How many {shape}s are there?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    sphere_patches = image_patch.find("sphere")
    return str(len(sphere_patches))
