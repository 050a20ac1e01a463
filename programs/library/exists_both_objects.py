"""Question: Are there both a cup and a laptop on the table?
Answer: yes or no
Qtype: exists
Source: general (GQA style)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    table_patches = image_patch.find("table")
    if len(table_patches) == 0:
        table_patches = [image_patch]
    table_patch = table_patches[0]
    has_cup = table_patch.exists("cup")
    has_laptop = table_patch.exists("laptop")
    return bool_to_yesno(has_cup and has_laptop)
