"""Question: How many objects are between the red cube and the green sphere horizontally?
Answer: a number as digits
Qtype: count_complex
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    red_cube = image_patch.find("red cube")[0]
    green_sphere = image_patch.find("green sphere")[0]
    left = min(red_cube.horizontal_center, green_sphere.horizontal_center)
    right = max(red_cube.horizontal_center, green_sphere.horizontal_center)
    count = 0
    for patch in image_patch.find("object"):
        if left < patch.horizontal_center < right:
            count = count + 1
    return str(count)
