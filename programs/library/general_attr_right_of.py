"""Question: What shape is the object right of the red cube?
Answer: a shape word
Qtype: attribute
Source: composition
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    red_cube = image_patch.find("red cube")[0]
    right_patches = [p for p in image_patch.find("object") if p.horizontal_center > red_cube.horizontal_center]
    if not right_patches:
        return "none"
    nearest = min(right_patches, key=lambda p: p.horizontal_center)
    return nearest.simple_query("What shape is the object?")
