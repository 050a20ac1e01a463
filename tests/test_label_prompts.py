"""Per-benchmark label prompts in `vpd mix` and `vpd predict`: multiple-choice questions list their
options and ask for the letter; shapes prompts stay as they were."""

from __future__ import annotations

import json
import sys
from pathlib import Path

from PIL import Image

sys.path.insert(0, str(Path(__file__).parent))

from vpd.distill.label_prompts import (DEFAULT_INSTRUCTION, LETTER_INSTRUCTION, benchmark_of,  # noqa: E402
                                       label_instruction)
from vpd.distill.mixture import LABEL_INSTRUCTION, build_mixture, label_prefix  # noqa: E402
from vpd.types import Example  # noqa: E402

SHAPES_MC = Example(id="s", image="x.png", question="Which shape is the yellow object?", answer="B",
                    choices=("sphere", "triangle"), qtype="choice",
                    metadata={"template": "Which shape is the {color} object?", "scene": []})
MMB = Example(id="m", image="x.png", question="What is in the image?", answer="A", choices=("a dog", "a cat"),
              qtype="mmbench", metadata={"index": 3, "category": "x"})
POPE = Example(id="p", image="x.png", question="Is there a dog in the image?", answer="yes", qtype="exists",
               metadata={"split": "test", "source": "pope"})
TALLY = Example(id="t", image="x.png", question="How many dogs?", answer="2", qtype="count",
                metadata={"source": "tallyqa", "issimple": True})
VQA = Example(id="v", image="x.png", question="What color is the bus?", answer="red", qtype="",
              metadata={"source": "vqav2"})


def test_instructions_per_benchmark():
    assert [benchmark_of(e) for e in (SHAPES_MC, MMB, POPE, TALLY, VQA)] == ["shapes", "mmbench", "pope", "tallyqa", "vqav2"]
    assert label_prefix(SHAPES_MC) == ("Which shape is the yellow object?\nA. sphere\nB. triangle\n"
                                       "Answer with a single word or phrase.")  # unchanged
    assert label_prefix(MMB) == f"What is in the image?\nA. a dog\nB. a cat\n{LETTER_INSTRUCTION}"
    assert label_instruction(POPE) == "Answer yes or no."
    assert label_instruction(TALLY) == "Answer with a number."
    assert label_instruction(VQA) == DEFAULT_INSTRUCTION == LABEL_INSTRUCTION
    unknown_mc = Example(id="u", image="x.png", question="Which?", answer="A", choices=("x", "y"))
    assert label_instruction(unknown_mc) == LETTER_INSTRUCTION
    by_loader = Example(id="b", image="x.png", question="Q?", answer="A", choices=("x", "y"),
                        metadata={"benchmark": "aokvqa"})
    assert label_instruction(by_loader) == LETTER_INSTRUCTION


def test_mixture_rows_use_the_benchmark_prompt(tmp_path):
    data = tmp_path / "data"
    (data / "images").mkdir(parents=True)
    lines = []
    for i, ex in enumerate((SHAPES_MC, MMB, POPE)):
        Image.new("RGB", (8, 8), (40 * i, 0, 0)).save(data / "images" / f"{i}.png")
        row = ex.to_dict()
        row["image"] = f"images/{i}.png"
        lines.append(json.dumps(row))
    (data / "examples.jsonl").write_text("\n".join(lines) + "\n")
    rep = build_mixture([data], tmp_path / "mix", val_frac=0.0)
    rows = {r["example_id"]: r for r in map(json.loads, (tmp_path / "mix" / "train.jsonl").read_text().splitlines())}
    assert rows["m"]["prefix"].endswith("B. a cat\n" + LETTER_INSTRUCTION) and rows["m"]["suffix"] == "A"
    assert rows["s"]["prefix"].endswith(LABEL_INSTRUCTION) and rows["p"]["prefix"].endswith("Answer yes or no.")
    assert json.loads((tmp_path / "mix" / "manifest.json").read_text())["label_prompts"] == rep.label_prompts == "2"


def test_predict_asks_with_the_same_prompt(tmp_path):
    """`vpd predict` decodes with the label prompt the mixture trained on (one function for both)."""
    from test_vlm_predict_modes import FakePredictor

    from vpd.distill.vlm_predict import predict_modes

    img = tmp_path / "x.png"
    Image.new("RGB", (8, 8)).save(img)
    exs = [Example(id=e.id, image=str(img), question=e.question, answer=e.answer, choices=e.choices, qtype=e.qtype,
                   metadata=e.metadata) for e in (MMB, POPE)]
    fake = FakePredictor({f"What is in the image?\nA. a dog\nB. a cat\n{LETTER_INSTRUCTION}": "A",
                          "Is there a dog in the image?\nAnswer yes or no.": "yes"})
    preds = predict_modes(fake, exs, modes=("direct",))
    assert [p.direct for p in preds] == ["A", "yes"]
