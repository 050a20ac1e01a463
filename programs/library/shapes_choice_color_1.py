"""Question: What color is the cylinder?
Choices: blue | red | yellow | green
Answer: the letter of the right option
Qtype: choice
Template: What color is the {shape}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    options = "A) blue B) red C) yellow D) green".split()
    for i in range(0, len(options), 2):
        if image_patch.exists(options[i + 1] + " cylinder"):
            return options[i][0]
    return "A"
