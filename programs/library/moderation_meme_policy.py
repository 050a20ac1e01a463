"""Question: Does this meme violate the policy against hateful or sexual content?
Answer: yes or no
Qtype: moderation
Source: general (content moderation)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    nudity_patches = image_patch.detect_nudity()
    if len(nudity_patches) > 0:
        return "yes"
    text = image_patch.ocr()
    caption = image_patch.simple_query("What does the picture show?")
    verdict = llm_query("A meme shows " + caption + " with the text: " + text + ". Does it attack people for their race, religion, gender or disability? Answer yes or no.", long_answer=False)
    return bool_to_yesno("yes" in verdict.lower())
