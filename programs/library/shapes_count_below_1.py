"""Question: How many spheres are below the yellow triangle?
Answer: a number as digits (the reference object is not counted)
Qtype: count_complex
Template: How many {shape}s are below the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    yellow_triangle = image_patch.find("yellow triangle")[0]
    sphere_patches = image_patch.find("sphere")
    count = 0
    for patch in sphere_patches:
        if patch.vertical_center < yellow_triangle.vertical_center:
            count = count + 1
    return str(count)
