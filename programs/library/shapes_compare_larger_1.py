"""Question: Is the green cube larger than the orange triangle?
Answer: yes or no
Qtype: compare
Template: Is the {color} {shape} larger than the {color2} {shape2}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    green_cube = image_patch.find("green cube")[0]
    orange_triangle = image_patch.find("orange triangle")[0]
    return bool_to_yesno(green_cube.width * green_cube.height > orange_triangle.width * orange_triangle.height)
