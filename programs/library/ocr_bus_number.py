"""Question: What number is on the front of the bus?
Answer: a number as digits
Qtype: ocr
Source: general (TextVQA-style)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    bus_patches = image_patch.find("bus")
    if len(bus_patches) == 0:
        return str(coerce_to_numeric(image_patch.ocr()))
    text = bus_patches[0].ocr()
    return str(coerce_to_numeric(text))
