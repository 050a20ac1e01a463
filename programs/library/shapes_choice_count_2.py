"""Question: How many yellow triangles are in the image?
Choices: 0 | 2 | 1 | 5
Answer: the letter of the right option
Qtype: choice
Template: How many {color} {shape}s are in the image?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    count = len(image_patch.find("yellow triangle"))
    options = "A) 0 B) 2 C) 1 D) 5".split()
    for i in range(0, len(options), 2):
        if options[i + 1] == str(count):
            return options[i][0]
    return "A"
