"""Question: How many green objects are there?
Answer: a number as digits
Qtype: count_simple
Template: How many {color} objects are there?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    object_patches = image_patch.find("green object")
    return str(len(object_patches))
