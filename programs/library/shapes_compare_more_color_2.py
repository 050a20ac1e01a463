"""Question: Are there more cyan objects than purple objects?
Answer: yes or no
Qtype: compare
Template: Are there more {color} objects than {color2} objects?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    cyan_patches = image_patch.find("cyan object")
    purple_patches = image_patch.find("purple object")
    return bool_to_yesno(len(cyan_patches) > len(purple_patches))
