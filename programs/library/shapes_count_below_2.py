"""Question: How many cylinders are below the red sphere?
Answer: a number as digits (the reference object is not counted)
Qtype: count_complex
Template: How many {shape}s are below the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    red_sphere = image_patch.find("red sphere")[0]
    cylinder_patches = image_patch.find("cylinder")
    count = 0
    for patch in cylinder_patches:
        if patch.vertical_center < red_sphere.vertical_center:
            count = count + 1
    return str(count)
