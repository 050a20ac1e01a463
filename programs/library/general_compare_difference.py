"""Question: How many more blue objects than green objects are there?
Answer: a number as digits (0 if not more)
Qtype: count_complex
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    blue_patches = image_patch.find("blue object")
    green_patches = image_patch.find("green object")
    return str(max(0, len(blue_patches) - len(green_patches)))
