"""Question: Are there no orange objects?
Answer: yes or no
Qtype: exists
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    return bool_to_yesno(not image_patch.exists("orange object"))
