"""Question: What color is the leftmost object?
Answer: a colour word
Qtype: attribute
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    object_patches = image_patch.find("object")
    leftmost = min(object_patches, key=lambda patch: patch.horizontal_center)
    return leftmost.simple_query("What color is the object?")
