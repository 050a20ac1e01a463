"""Question: How many small objects are above the large blue sphere?
Answer: a number as digits (the reference object is not counted)
Qtype: count_complex
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    reference = image_patch.find("large blue sphere")[0]
    small_patches = image_patch.find("small object")
    count = 0
    for patch in small_patches:
        if patch.vertical_center > reference.vertical_center:
            count = count + 1
    return str(count)
