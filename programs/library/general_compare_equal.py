"""Question: Are there as many cubes as cylinders?
Answer: yes or no
Qtype: compare
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    cube_patches = image_patch.find("cube")
    cylinder_patches = image_patch.find("cylinder")
    return bool_to_yesno(len(cube_patches) == len(cylinder_patches))
