"""Question: Is the red triangle to the right of the cyan cube?
Answer: yes or no
Qtype: spatial
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    red_triangle = image_patch.find("red triangle")[0]
    cyan_cube = image_patch.find("cyan cube")[0]
    return bool_to_yesno(red_triangle.horizontal_center > cyan_cube.horizontal_center)
