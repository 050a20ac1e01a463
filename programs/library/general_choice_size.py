"""Question: Which size does the green sphere have?
Choices: small | large
Answer: the letter of the right option
Qtype: choice
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    options = "A) small B) large".split()
    green_sphere = image_patch.find("green sphere")[0]
    size = green_sphere.simple_query("What size is the sphere?")
    for i in range(0, len(options), 2):
        if options[i + 1] == size:
            return options[i][0]
    return "A"
