"""TallyQA: ``train.json`` / ``test.json`` and the Visual Genome + COCO images they name.

Release files (manoja328/TallyQA_dataset): a JSON list of ``{image, answer, data_source, image_id,
issimple, question, question_id}`` (``issimple`` only in test.json); ``image`` is a path relative to
the image root (``VG_100K_2/1.jpg``, ``train2014/COCO_train2014_….jpg``), joined to ``--images``.

Each example: ``answer`` = the count as a digit string, ``qtype`` = ``count``, ``metadata``:
``issimple``, ``data_source``, ``image_id``, ``question_id``, ``split``, ``source``.
"""

from __future__ import annotations

from typing import Iterator

from vpd.benchmarks.importers.base import (
    MALFORMED, NO_ANSWER, BadRecord, ImportContext, ImportSourceError, image_or_bad, load_json,
    register_importer,
)
from vpd.types import Example


@register_importer("tallyqa", splits=("train", "test"),
                   layout="<split>.json; images at --images/<record image path>")
def read_tallyqa(ctx: ImportContext) -> Iterator[Example | BadRecord]:
    file = ctx.find("{split}.json")
    data = load_json(file)
    if not isinstance(data, list):
        raise ImportSourceError(f"{file}: expected a JSON list of questions (TallyQA format)")
    for i, q in enumerate(data):
        rid = str(q.get("question_id", f"#{i}")) if isinstance(q, dict) else f"#{i}"
        if not isinstance(q, dict) or any(k not in q for k in ("question_id", "image", "question")):
            yield BadRecord(record_id=rid, reason=MALFORMED, file=file.name, detail="needs question_id, image and question",
                            record=q if isinstance(q, dict) else {})
            continue
        answer = q.get("answer")
        if isinstance(answer, bool) or not isinstance(answer, (int, str)) or not str(answer).strip().isdigit():
            yield BadRecord(record_id=rid, reason=NO_ANSWER, file=file.name,
                            detail=f"answer {answer!r} is not a non-negative integer", record=q)
            continue
        image = image_or_bad(ctx.image_root / str(q["image"]), rid, file.name, q)
        if isinstance(image, BadRecord):
            yield image
            continue
        meta = {"split": ctx.split, "source": "tallyqa", "question_id": q["question_id"],
                "image_id": q.get("image_id"), "data_source": q.get("data_source"), "issimple": q.get("issimple")}
        yield Example(id=rid, image=image, question=str(q["question"]), answer=str(int(str(answer).strip())),
                      qtype="count", metadata=meta)
