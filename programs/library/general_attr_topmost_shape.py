"""Question: What shape is the highest object?
Answer: a shape word
Qtype: attribute
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    object_patches = image_patch.find("object")
    top = max(object_patches, key=lambda patch: patch.vertical_center)
    return top.simple_query("What shape is the object?")
