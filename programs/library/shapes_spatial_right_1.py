"""Question: Is the purple triangle right of the cyan sphere?
Answer: yes or no
Qtype: spatial
Template: Is the {color} {shape} right of the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    purple_triangle = image_patch.find("purple triangle")[0]
    cyan_sphere = image_patch.find("cyan sphere")[0]
    return bool_to_yesno(purple_triangle.horizontal_center > cyan_sphere.horizontal_center)
