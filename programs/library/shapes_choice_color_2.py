"""Question: What color is the sphere?
Choices: orange | cyan | purple | red
Answer: the letter of the right option
Qtype: choice
Template: What color is the {shape}?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    options = "A) orange B) cyan C) purple D) red".split()
    for i in range(0, len(options), 2):
        if image_patch.exists(options[i + 1] + " sphere"):
            return options[i][0]
    return "A"
