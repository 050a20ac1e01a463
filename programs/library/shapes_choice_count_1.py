"""Question: How many blue cubes are in the image?
Choices: 3 | 1 | 2 | 4
Answer: the letter of the right option
Qtype: choice
Template: How many {color} {shape}s are in the image?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    count = len(image_patch.find("blue cube"))
    options = "A) 3 B) 1 C) 2 D) 4".split()
    for i in range(0, len(options), 2):
        if options[i + 1] == str(count):
            return options[i][0]
    return "A"
