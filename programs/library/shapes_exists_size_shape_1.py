"""Question: Is there a small triangle?
Answer: yes or no
Qtype: exists
Template: Is there a {size} {shape}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    return bool_to_yesno(image_patch.exists("small triangle"))
