"""Question: Are there more cubes than spheres?
Answer: yes or no
Qtype: compare
Template: Are there more {shape}s than {shape2}s?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    cube_patches = image_patch.find("cube")
    sphere_patches = image_patch.find("sphere")
    return bool_to_yesno(len(cube_patches) > len(sphere_patches))
