"""Question: How many cubes are above the blue sphere?
Answer: a number as digits (the reference object is not counted)
Qtype: count_complex
Template: How many {shape}s are above the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    blue_sphere = image_patch.find("blue sphere")[0]
    cube_patches = image_patch.find("cube")
    count = 0
    for patch in cube_patches:
        if patch.vertical_center > blue_sphere.vertical_center:
            count = count + 1
    return str(count)
