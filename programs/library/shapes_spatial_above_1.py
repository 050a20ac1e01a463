"""Question: Is the yellow cube above the green sphere?
Answer: yes or no
Qtype: spatial
Template: Is the {color} {shape} above the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    yellow_cube = image_patch.find("yellow cube")[0]
    green_sphere = image_patch.find("green sphere")[0]
    return bool_to_yesno(yellow_cube.vertical_center > green_sphere.vertical_center)
