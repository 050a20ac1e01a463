"""Question: What does the sign say?
Answer: the text, as written
Qtype: ocr
Source: general (TextVQA-style)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    sign_patches = image_patch.find("sign")
    if len(sign_patches) == 0:
        return image_patch.ocr()
    return sign_patches[0].ocr()
