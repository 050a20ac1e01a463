"""Question: How many birds are sitting on the wire?
Choices: 1 | 2 | 3 | 4
Answer: the letter of the right option
Qtype: choice
Source: general (MMBench style)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    count = len(image_patch.find("bird"))
    options = "A) 1 B) 2 C) 3 D) 4".split()
    for i in range(0, len(options), 2):
        if options[i + 1] == str(count):
            return options[i][0]
    return "D"
