"""Question: Is the red cube below the blue sphere?
Answer: yes or no
Qtype: spatial
Template: Is the {color} {shape} below the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    red_cube = image_patch.find("red cube")[0]
    blue_sphere = image_patch.find("blue sphere")[0]
    return bool_to_yesno(red_cube.vertical_center < blue_sphere.vertical_center)
