"""Question: What color is the biggest cylinder?
Answer: a colour word
Qtype: attribute
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    cylinder_patches = image_patch.find("cylinder")
    biggest = max(cylinder_patches, key=lambda patch: patch.width * patch.height)
    return biggest.simple_query("What color is the cylinder?")
