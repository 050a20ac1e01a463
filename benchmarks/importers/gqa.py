"""GQA: the balanced questions JSON and the images folder.

Release files (cs.stanford.edu/people/dorarad/gqa): ``{split}_balanced_questions.json`` in
``--from DIR`` (or the file itself), a JSON object ``{questionId: {imageId, question, answer,
fullAnswer, isBalanced, types: {structural, semantic, detailed}, ...}}``; images
``IMAGES/images/{imageId}.jpg`` (or ``IMAGES/{imageId}.jpg``).

Each example: ``answer`` = ``answer`` (GQA has one reference answer), ``metadata``: ``full_answer``,
``image_id``, ``is_balanced``, ``structural`` / ``semantic`` / ``detailed`` types, ``split``,
``source``. The test, challenge and submission questions carry no answers and are written unlabelled.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

from vpd.benchmarks.importers.base import (
    MALFORMED, NO_ANSWER, BadRecord, ImportContext, ImportSourceError, image_or_bad, load_json,
    register_importer,
)
from vpd.types import Example

_UNLABELLED = ("test", "challenge", "submission")


def gqa_image(root: Path, image_id: str) -> Path:
    nested = root / "images" / f"{image_id}.jpg"
    return nested if nested.is_file() or not (root / f"{image_id}.jpg").is_file() else root / f"{image_id}.jpg"


@register_importer("gqa", splits=("train", "val", "testdev", "test", "challenge", "submission"),
                   layout="<split>_balanced_questions.json; images/<imageId>.jpg under --images")
def read_gqa(ctx: ImportContext) -> Iterator[Example | BadRecord]:
    file = ctx.find("{split}_balanced_questions.json", "{split}_all_questions.json")
    data = load_json(file)
    if not isinstance(data, dict):
        raise ImportSourceError(f"{file}: expected a JSON object {{questionId: question}} (GQA format)")
    for qid, q in data.items():
        if not isinstance(q, dict) or "question" not in q or "imageId" not in q:
            yield BadRecord(record_id=str(qid), reason=MALFORMED, file=file.name, detail="needs imageId and question",
                            record=q if isinstance(q, dict) else {})
            continue
        answer = q.get("answer")
        if ctx.split not in _UNLABELLED and (answer is None or str(answer).strip() == ""):
            yield BadRecord(record_id=str(qid), reason=NO_ANSWER, file=file.name, record=q)
            continue
        image = image_or_bad(gqa_image(ctx.image_root, str(q["imageId"])), str(qid), file.name, q)
        if isinstance(image, BadRecord):
            yield image
            continue
        types = q.get("types") or {}
        meta = {"split": ctx.split, "source": "gqa", "question_id": str(qid), "image_id": str(q["imageId"]),
                "full_answer": q.get("fullAnswer"), "is_balanced": q.get("isBalanced"),
                "structural": types.get("structural"), "semantic": types.get("semantic"),
                "detailed": types.get("detailed")}
        yield Example(id=str(qid), image=image, question=str(q["question"]),
                      answer=None if answer is None else str(answer), qtype="gqa", metadata=meta)
