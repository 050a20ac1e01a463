"""Question: Is there a green cube or a green cylinder?
Answer: yes or no
Qtype: exists
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    return bool_to_yesno(image_patch.exists("green cube") or image_patch.exists("green cylinder"))
