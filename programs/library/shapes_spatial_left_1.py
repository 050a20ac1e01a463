"""Question: Is the red sphere left of the blue cube?
Answer: yes or no
Qtype: spatial
Template: Is the {color} {shape} left of the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    red_sphere = image_patch.find("red sphere")[0]
    blue_cube = image_patch.find("blue cube")[0]
    return bool_to_yesno(red_sphere.horizontal_center < blue_cube.horizontal_center)
