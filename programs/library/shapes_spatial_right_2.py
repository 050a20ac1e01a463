"""Question: Is the orange cube right of the red cylinder?
Answer: yes or no
Qtype: spatial
Template: Is the {color} {shape} right of the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    orange_cube = image_patch.find("orange cube")[0]
    red_cylinder = image_patch.find("red cylinder")[0]
    return bool_to_yesno(orange_cube.horizontal_center > red_cylinder.horizontal_center)
