"""Question: What color is the car?
Answer: a colour word
Qtype: attribute
Source: general (VQAv2 style)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    car_patches = image_patch.find("car")
    if len(car_patches) == 0:
        return image_patch.simple_query("What color is the car?")
    return car_patches[0].simple_query("What color is the car?")
