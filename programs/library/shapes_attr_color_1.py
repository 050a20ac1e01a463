"""Question: What color is the large cube?
Answer: a colour word
Qtype: attribute
Template: What color is the {size} {shape}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    for color in ["red", "green", "blue", "yellow", "purple", "orange", "cyan"]:
        if image_patch.exists("large " + color + " cube"):
            return color
    return "unknown"
