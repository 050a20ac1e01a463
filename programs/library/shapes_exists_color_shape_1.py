"""Question: Is there a green sphere?
Answer: yes or no
Qtype: exists
Template: Is there a {color} {shape}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    return bool_to_yesno(image_patch.exists("green sphere"))
