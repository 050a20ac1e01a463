"""Question: Is the large cube lower than the small sphere?
Answer: yes or no
Qtype: spatial
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    large_cube = image_patch.find("large cube")[0]
    small_sphere = image_patch.find("small sphere")[0]
    return bool_to_yesno(large_cube.vertical_center < small_sphere.vertical_center)
