"""Question: How many blue objects are left of the red triangle?
Answer: a number as digits (the reference object is not counted)
Qtype: count_complex
Template: How many {color} objects are left of the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    red_triangle = image_patch.find("red triangle")[0]
    object_patches = image_patch.find("blue object")
    count = 0
    for patch in object_patches:
        if patch.horizontal_center < red_triangle.horizontal_center:
            count = count + 1
    return str(count)
