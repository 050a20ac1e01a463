"""Question: Is the green cylinder left of the yellow triangle?
Answer: yes or no
Qtype: spatial
Template: Is the {color} {shape} left of the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    green_cylinder = image_patch.find("green cylinder")[0]
    yellow_triangle = image_patch.find("yellow triangle")[0]
    return bool_to_yesno(green_cylinder.horizontal_center < yellow_triangle.horizontal_center)
