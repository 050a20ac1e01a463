"""Question: Which shape is the green object?
Choices: sphere | triangle | cube | cylinder
Answer: the letter of the right option
Qtype: choice
Template: Which shape is the {color} object?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    options = "A) sphere B) triangle C) cube D) cylinder".split()
    for i in range(0, len(options), 2):
        if image_patch.exists("green " + options[i + 1]):
            return options[i][0]
    return "A"
