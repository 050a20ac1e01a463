"""Question: Are there more triangles than cylinders?
Answer: yes or no
Qtype: compare
Template: Are there more {shape}s than {shape2}s?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    triangle_patches = image_patch.find("triangle")
    cylinder_patches = image_patch.find("cylinder")
    return bool_to_yesno(len(triangle_patches) > len(cylinder_patches))
