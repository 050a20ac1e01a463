"""Question: How many triangles are in the left half of the image?
Answer: a number as digits
Qtype: count_complex
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    count = 0
    for patch in image_patch.find("triangle"):
        if patch.horizontal_center < image_patch.width / 2:
            count = count + 1
    return str(count)
