"""Question: Which shape is the small blue object?
Choices: cube | sphere | triangle | cylinder
Answer: the letter of the right option
Qtype: choice
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    options = "A) cube B) sphere C) triangle D) cylinder".split()
    for i in range(0, len(options), 2):
        if image_patch.exists("small blue " + options[i + 1]):
            return options[i][0]
    return "A"
