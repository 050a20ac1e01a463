"""Question: Is there a dog in the image?
Answer: yes or no
Qtype: exists
Source: general (POPE)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    return bool_to_yesno(image_patch.exists("dog"))
