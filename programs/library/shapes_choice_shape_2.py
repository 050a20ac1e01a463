"""Question: Which shape is the red object?
Choices: cube | cylinder | sphere | triangle
Answer: the letter of the right option
Qtype: choice
Template: Which shape is the {color} object?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    options = "A) cube B) cylinder C) sphere D) triangle".split()
    for i in range(0, len(options), 2):
        if image_patch.exists("red " + options[i + 1]):
            return options[i][0]
    return "A"
