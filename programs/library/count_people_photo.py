"""Question: How many people are in the photo?
Answer: a number as digits
Qtype: count_simple
Source: general (TallyQA simple)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    person_patches = image_patch.find("person")
    return str(len(person_patches))
