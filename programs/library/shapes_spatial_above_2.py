"""Question: Is the blue cylinder above the purple triangle?
Answer: yes or no
Qtype: spatial
Template: Is the {color} {shape} above the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    blue_cylinder = image_patch.find("blue cylinder")[0]
    purple_triangle = image_patch.find("purple triangle")[0]
    return bool_to_yesno(blue_cylinder.vertical_center > purple_triangle.vertical_center)
