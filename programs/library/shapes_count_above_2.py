"""Question: How many triangles are above the orange cube?
Answer: a number as digits (the reference object is not counted)
Qtype: count_complex
Template: How many {shape}s are above the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    orange_cube = image_patch.find("orange cube")[0]
    triangle_patches = image_patch.find("triangle")
    count = 0
    for patch in triangle_patches:
        if patch.vertical_center > orange_cube.vertical_center:
            count = count + 1
    return str(count)
