"""Question: Is the man wearing glasses?
Answer: yes or no
Qtype: attribute
Source: general (VQAv2 style)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    man_patches = image_patch.find("man")
    if len(man_patches) == 0:
        return image_patch.simple_query("Is the man wearing glasses?")
    return bool_to_yesno(man_patches[0].verify_property("man", "wearing glasses"))
