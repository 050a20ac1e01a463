"""Question: Is the cup to the left of the laptop?
Answer: yes or no
Qtype: spatial
Source: general (GQA style)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    cup_patches = image_patch.find("cup")
    laptop_patches = image_patch.find("laptop")
    if len(cup_patches) == 0 or len(laptop_patches) == 0:
        return image_patch.simple_query("Is the cup to the left of the laptop?")
    return bool_to_yesno(cup_patches[0].horizontal_center < laptop_patches[0].horizontal_center)
