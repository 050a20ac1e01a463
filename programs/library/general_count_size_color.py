"""Question: How many large red objects are there?
Answer: a number as digits
Qtype: count_simple
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    patches = image_patch.find("large red object")
    return str(len(patches))
