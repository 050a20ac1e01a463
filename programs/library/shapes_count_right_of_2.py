"""Question: How many red objects are right of the cyan cylinder?
Answer: a number as digits (the reference object is not counted)
Qtype: count_complex
Template: How many {color} objects are right of the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    cyan_cylinder = image_patch.find("cyan cylinder")[0]
    object_patches = image_patch.find("red object")
    count = 0
    for patch in object_patches:
        if patch.horizontal_center > cyan_cylinder.horizontal_center:
            count = count + 1
    return str(count)
