"""Question: Are there fewer spheres than red objects?
Answer: yes or no
Qtype: compare
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    sphere_patches = image_patch.find("sphere")
    red_patches = image_patch.find("red object")
    return bool_to_yesno(len(sphere_patches) < len(red_patches))
