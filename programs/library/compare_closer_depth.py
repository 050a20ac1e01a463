"""Question: Which is closer to the camera, the chair or the table?
Answer: the name of the closer object
Qtype: compare
Source: general (depth)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    chair_patches = image_patch.find("chair")
    table_patches = image_patch.find("table")
    if len(chair_patches) == 0 or len(table_patches) == 0:
        return image_patch.simple_query("Which is closer to the camera, the chair or the table?")
    if chair_patches[0].compute_depth() < table_patches[0].compute_depth():
        return "chair"
    return "table"
