"""Question: How many people are wearing hats?
Answer: a number as digits
Qtype: count_complex
Source: general (TallyQA complex)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    person_patches = image_patch.find("person")
    count = 0
    for person_patch in person_patches:
        if person_patch.verify_property("person", "wearing a hat"):
            count = count + 1
    return str(count)
