"""Question: How many objects are there in total?
Answer: a number as digits
Qtype: count_simple
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    object_patches = image_patch.find("object")
    return str(len(object_patches))
