"""Question: Is the blue cylinder small or large?
Answer: small or large
Qtype: attribute
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    blue_cylinder = image_patch.find("blue cylinder")[0]
    return blue_cylinder.simple_query("What size is the cylinder?")
