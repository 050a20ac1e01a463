"""Question: Which country does this dish come from?
Answer: a country name
Qtype: knowledge
Source: general (OK-VQA / A-OKVQA style)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    dish = image_patch.simple_query("What dish is this?")
    return llm_query("Which country does the dish " + dish + " come from?", long_answer=False)
