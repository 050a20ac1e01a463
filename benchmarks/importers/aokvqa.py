"""A-OKVQA: ``aokvqa_v1p0_{train,val,test}.json`` and COCO 2017 images.

Release file (allenai/aokvqa): a JSON list of ``{question_id, image_id, question, choices,
correct_choice_idx, direct_answers, difficult_direct_answer, rationales}``; images
``IMAGES/{train,val,test}2017/{image_id:012d}.jpg`` (or the file name directly in ``IMAGES``).

Each example is multiple choice, like the rest of vpd: ``choices`` = the four option texts,
``answer`` = the letter of ``correct_choice_idx`` (``A``-``D``), ``metadata``: ``answer_text``
(the correct choice), ``answers`` = the ten ``direct_answers`` (the DA labels), ``rationales``,
``difficult_direct_answer``, ``image_id``, ``split``, ``source``. The test split is published
without ``correct_choice_idx``, ``direct_answers`` and ``rationales``: it is registered as
unlabelled and its examples have ``answer`` null and no ``answers``/``rationales``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from vpd.benchmarks.importers.base import (
    MALFORMED, NO_ANSWER, BadRecord, ImportContext, ImportSourceError, image_or_bad, load_json,
    register_importer,
)
from vpd.types import Example

LETTERS = "ABCDEFGH"


def coco2017_image(root: Path, split: str, image_id: int) -> Path:
    name = f"{int(image_id):012d}.jpg"
    nested = root / f"{split}2017" / name
    return nested if nested.is_file() or not (root / name).is_file() else root / name


@register_importer("aokvqa", splits=("train", "val", "test"), unlabelled=("test",),
                   layout="aokvqa_v1p0_<split>.json; COCO 2017 images (<split>2017/<image_id:012d>.jpg) under --images")
def read_aokvqa(ctx: ImportContext) -> Iterator[Example | BadRecord]:
    file = ctx.find("aokvqa_v1p0_{split}.json", "aokvqa_*_{split}.json")
    data = load_json(file)
    if not isinstance(data, list):
        raise ImportSourceError(f"{file}: expected a JSON list of questions (A-OKVQA format)")
    for i, q in enumerate(data):
        rid = str(q.get("question_id", f"#{i}")) if isinstance(q, dict) else f"#{i}"
        if not isinstance(q, dict) or any(k not in q for k in ("question_id", "image_id", "question", "choices")) \
                or not isinstance(q["choices"], list) or len(q["choices"]) > len(LETTERS):
            yield BadRecord(record_id=rid, reason=MALFORMED, file=file.name,
                            detail="needs question_id, image_id, question and a list of choices",
                            record=q if isinstance(q, dict) else {})
            continue
        choices = tuple(str(c) for c in q["choices"])
        idx = q.get("correct_choice_idx")
        if not ctx.unlabelled and not (isinstance(idx, int) and 0 <= idx < len(choices)):
            yield BadRecord(record_id=rid, reason=NO_ANSWER, file=file.name,
                            detail=f"correct_choice_idx {idx!r} does not name a choice", record=q)
            continue
        try:
            image = image_or_bad(coco2017_image(ctx.image_root, ctx.split, int(q["image_id"])), rid, file.name, q)
        except (TypeError, ValueError):
            yield BadRecord(record_id=rid, reason=MALFORMED, file=file.name, detail=f"image_id {q['image_id']!r}",
                            record=q)
            continue
        if isinstance(image, BadRecord):
            yield image
            continue
        labelled = isinstance(idx, int) and 0 <= idx < len(choices)
        meta = {"split": ctx.split, "source": "aokvqa", "question_id": q["question_id"], "image_id": q["image_id"],
                "difficult_direct_answer": q.get("difficult_direct_answer")}
        if labelled:
            meta["answer_text"] = choices[idx]
        if q.get("direct_answers") or not ctx.unlabelled:  # the DA labels (none in the test release)
            meta["answers"] = [str(a) for a in q.get("direct_answers") or []]
        if q.get("rationales") or not ctx.unlabelled:
            meta["rationales"] = q.get("rationales") or []
        yield Example(id=rid, image=image, question=str(q["question"]), answer=LETTERS[idx] if labelled else None,
                      choices=choices, qtype="aokvqa", metadata=meta)
