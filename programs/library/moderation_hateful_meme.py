"""Question: Is this meme hateful?
Answer: yes or no
Qtype: moderation
Source: general (Hateful Memes)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    text = image_patch.ocr()
    people = image_patch.simple_query("Who is in the picture?")
    verdict = llm_query("A meme shows " + people + " with the caption: " + text + ". Is this meme hateful? Answer yes or no.", long_answer=False)
    return bool_to_yesno("yes" in verdict.lower())
