"""Question: How many spheres and cylinders are there altogether?
Answer: a number as digits
Qtype: count_simple
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    sphere_patches = image_patch.find("sphere")
    cylinder_patches = image_patch.find("cylinder")
    return str(len(sphere_patches) + len(cylinder_patches))
