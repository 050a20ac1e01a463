"""Question: Is the yellow sphere larger than the blue cylinder?
Answer: yes or no
Qtype: compare
Template: Is the {color} {shape} larger than the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    yellow_sphere = image_patch.find("yellow sphere")[0]
    blue_cylinder = image_patch.find("blue cylinder")[0]
    return bool_to_yesno(yellow_sphere.width * yellow_sphere.height > blue_cylinder.width * blue_cylinder.height)
