"""Question: Which country is the company on the bottle from?
Answer: a country name
Qtype: knowledge
Source: general (OCR + knowledge)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    bottle_patches = image_patch.find("bottle")
    if len(bottle_patches) == 0:
        bottle_patches = [image_patch]
    brand = bottle_patches[0].ocr()
    return llm_query("Which country is the company " + brand + " from?", long_answer=False)
