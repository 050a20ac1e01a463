"""Question: What shape is the red object?
Answer: a shape word
Qtype: attribute
Template: What shape is the {color} object?
Source: shapes
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    for shape in ["cube", "sphere", "cylinder", "triangle"]:
        if image_patch.exists("red " + shape):
            return shape
    return "unknown"
