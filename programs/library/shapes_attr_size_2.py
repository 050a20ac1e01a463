"""Question: What size is the orange sphere?
Answer: small or large
Qtype: attribute
Template: What size is the {color} {shape}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    if image_patch.exists("large orange sphere"):
        return "large"
    return "small"
