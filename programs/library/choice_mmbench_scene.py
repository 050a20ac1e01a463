"""Question: Which of the following best describes the weather in the image?
Choices: sunny | rainy | snowy | foggy
Answer: the letter of the right option
Qtype: choice
Source: general (MMBench style)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    options = ["sunny", "rainy", "snowy", "foggy"]
    best = image_patch.best_text_match(options)
    return "ABCD"[options.index(best)]
