"""Question: How many cubes are right of the red sphere?
Choices: 0 | 2 | 1 | 3
Answer: the letter of the right option
Qtype: choice
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    red_sphere = image_patch.find("red sphere")[0]
    count = 0
    for patch in image_patch.find("cube"):
        if patch.horizontal_center > red_sphere.horizontal_center:
            count = count + 1
    options = "A) 0 B) 2 C) 1 D) 3".split()
    for i in range(0, len(options), 2):
        if options[i + 1] == str(count):
            return options[i][0]
    return "A"
