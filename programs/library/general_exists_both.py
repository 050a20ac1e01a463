"""Question: Are there both a red cube and a blue sphere?
Answer: yes or no
Qtype: exists
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    return bool_to_yesno(image_patch.exists("red cube") and image_patch.exists("blue sphere"))
