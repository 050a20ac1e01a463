"""Question: How many dogs are on the couch?
Answer: a number as digits
Qtype: count_complex
Source: general (TallyQA complex)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    couch_patches = image_patch.find("couch")
    if len(couch_patches) == 0:
        return "0"
    couch_patch = couch_patches[0]
    dog_patches = image_patch.find("dog")
    count = 0
    for dog_patch in dog_patches:
        if couch_patch.overlaps_with(dog_patch.left, dog_patch.lower, dog_patch.right, dog_patch.upper):
            count = count + 1
    return str(count)
