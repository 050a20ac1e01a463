"""Question: Is the cyan triangle below the orange cube?
Answer: yes or no
Qtype: spatial
Template: Is the {color} {shape} below the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    cyan_triangle = image_patch.find("cyan triangle")[0]
    orange_cube = image_patch.find("orange cube")[0]
    return bool_to_yesno(cyan_triangle.vertical_center < orange_cube.vertical_center)
