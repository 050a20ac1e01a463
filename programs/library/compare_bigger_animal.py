"""Question: Which animal is bigger in the picture, the cat or the dog?
Answer: the name of the bigger one
Qtype: compare
Source: general
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    cat_patch = image_patch.find("cat")[0]
    dog_patch = image_patch.find("dog")[0]
    if cat_patch.width * cat_patch.height > dog_patch.width * dog_patch.height:
        return "cat"
    return "dog"
