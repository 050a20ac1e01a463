"""Question: What size is the blue triangle?
Answer: small or large
Qtype: attribute
Template: What size is the {color} {shape}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    if image_patch.exists("large blue triangle"):
        return "large"
    return "small"
