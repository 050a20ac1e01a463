"""Question: Which color is the object closest to the green cube?
Answer: a colour word
Qtype: spatial
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    green_cube = image_patch.find("green cube")[0]
    others = [p for p in image_patch.find("object") if distance(p, green_cube) > 0]
    if not others:
        return "none"
    closest = min(others, key=lambda p: distance(p, green_cube))
    return closest.simple_query("What color is the object?")
