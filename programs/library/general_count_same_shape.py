"""Question: How many other objects have the same shape as the yellow object?
Answer: a number as digits
Qtype: count_complex
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    yellow = image_patch.find("yellow object")[0]
    shape = yellow.simple_query("What shape is the object?")
    same = image_patch.find(shape)
    return str(len(same) - 1)
