"""Question: How many cyan cylinders are there?
Answer: a number as digits
Qtype: count_simple
Template: How many {color} {shape}s are there?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    cylinder_patches = image_patch.find("cyan cylinder")
    return str(len(cylinder_patches))
