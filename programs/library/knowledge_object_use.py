"""Question: What is the tool the man is holding used for?
Answer: a short phrase
Qtype: knowledge
Source: general (A-OKVQA style)
"""


def execute_command(image):
    image_patch = ImagePatch(image)
    man_patches = image_patch.find("man")
    if len(man_patches) == 0:
        man_patches = [image_patch]
    tool = man_patches[0].simple_query("What tool is the man holding?")
    return llm_query("What is a " + tool + " used for?", long_answer=False)
