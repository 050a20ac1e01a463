"""Question: How many yellow objects are left of the green cube?
Answer: a number as digits (the reference object is not counted)
Qtype: count_complex
Template: How many {color} objects are left of the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    green_cube = image_patch.find("green cube")[0]
    object_patches = image_patch.find("yellow object")
    count = 0
    for patch in object_patches:
        if patch.horizontal_center < green_cube.horizontal_center:
            count = count + 1
    return str(count)
