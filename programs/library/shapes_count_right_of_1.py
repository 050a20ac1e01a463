"""Question: How many orange objects are right of the purple sphere?
Answer: a number as digits (the reference object is not counted)
Qtype: count_complex
Template: How many {color} objects are right of the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    purple_sphere = image_patch.find("purple sphere")[0]
    object_patches = image_patch.find("orange object")
    count = 0
    for patch in object_patches:
        if patch.horizontal_center > purple_sphere.horizontal_center:
            count = count + 1
    return str(count)
