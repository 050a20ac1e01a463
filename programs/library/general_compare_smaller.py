"""Question: Is the yellow sphere smaller than the purple cube?
Answer: yes or no
Qtype: compare
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    yellow_sphere = image_patch.find("yellow sphere")[0]
    purple_cube = image_patch.find("purple cube")[0]
    return bool_to_yesno(yellow_sphere.width * yellow_sphere.height < purple_cube.width * purple_cube.height)
