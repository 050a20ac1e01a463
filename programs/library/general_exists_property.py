"""Question: Is any of the spheres large?
Answer: yes or no
Qtype: exists
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    for patch in image_patch.find("sphere"):
        if patch.simple_query("What size is the sphere?") == "large":
            return "yes"
    return "no"
