"""Question: Are all the spheres left of the blue cube?
Answer: yes or no
Qtype: spatial
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    blue_cube = image_patch.find("blue cube")[0]
    for patch in image_patch.find("sphere"):
        if patch.horizontal_center >= blue_cube.horizontal_center:
            return "no"
    return "yes"
