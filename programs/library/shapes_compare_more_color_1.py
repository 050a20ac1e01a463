"""Question: Are there more red objects than green objects?
Answer: yes or no
Qtype: compare
Template: Are there more {color} objects than {color2} objects?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    red_patches = image_patch.find("red object")
    green_patches = image_patch.find("green object")
    return bool_to_yesno(len(red_patches) > len(green_patches))
