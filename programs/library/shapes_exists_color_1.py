"""Question: Are there any orange objects?
Answer: yes or no
Qtype: exists
Template: Are there any {color} objects?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    return bool_to_yesno(image_patch.exists("orange object"))
