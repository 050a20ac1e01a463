"""Question: Is there a cube to the left of the purple sphere?
Answer: yes or no
Qtype: exists
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    purple_sphere = image_patch.find("purple sphere")[0]
    for patch in image_patch.find("cube"):
        if patch.horizontal_center < purple_sphere.horizontal_center:
            return "yes"
    return "no"
