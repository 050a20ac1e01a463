"""OCR-VQA: ``dataset.json`` and the book-cover images its download script saves.

Release file (ocr-vqa.github.io): a JSON object ``{id: {imageURL, questions: [...], answers:
[...], title, authorName, genre, split}}`` with ``split`` 1 = train, 2 = val, 3 = test; the
script saves each cover as ``images/{id}{extension of imageURL}`` (looked up under ``--images``,
then ``--images/images``). One example per question, id ``{id}_{i}``; ``answer`` = ``answers[i]``,
``metadata``: ``book_id``, ``title``, ``author``, ``genre``, ``split``, ``source``.
A record whose ``split`` is not 1, 2 or 3 is reported as ``unknown split``.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterator

from vpd.benchmarks.importers.base import (
    MALFORMED, NO_ANSWER, UNKNOWN_SPLIT, BadRecord, ImportContext, ImportSourceError, image_or_bad, load_json,
    register_importer,
)
from vpd.types import Example

SPLIT_CODES = {1: "train", 2: "val", 3: "test"}


def ocrvqa_image(root: Path, book_id: str, url: str) -> Path:
    ext = os.path.splitext(str(url))[1] or ".jpg"
    for folder in (root / "images", root):
        if (folder / f"{book_id}{ext}").is_file():
            return folder / f"{book_id}{ext}"
    return root / "images" / f"{book_id}{ext}"


@register_importer("ocrvqa", splits=("train", "val", "test"),
                   layout="dataset.json; images/<id><ext of imageURL> under --images")
def read_ocrvqa(ctx: ImportContext) -> Iterator[Example | BadRecord]:
    file = ctx.find("dataset.json")
    data = load_json(file)
    if not isinstance(data, dict):
        raise ImportSourceError(f"{file}: expected a JSON object {{id: record}} (OCR-VQA dataset.json)")
    for book_id, rec in data.items():
        book_id = str(book_id)
        if not isinstance(rec, dict) or not isinstance(rec.get("questions"), list) \
                or not isinstance(rec.get("answers"), list):
            yield BadRecord(record_id=book_id, reason=MALFORMED, file=file.name, detail="needs questions and answers lists",
                            record=rec if isinstance(rec, dict) else {})
            continue
        try:
            split = SPLIT_CODES.get(int(rec.get("split")))
        except (TypeError, ValueError):
            split = None
        if split is None:
            yield BadRecord(record_id=book_id, reason=UNKNOWN_SPLIT, file=file.name,
                            detail=f"split {rec.get('split')!r} is not 1 (train), 2 (val) or 3 (test)", record=rec)
            continue
        if split != ctx.split:
            continue  # another split's record: not asked for, not bad
        questions, answers = rec["questions"], rec["answers"]
        if len(questions) != len(answers):
            yield BadRecord(record_id=book_id, reason=MALFORMED, file=file.name,
                            detail=f"{len(questions)} questions but {len(answers)} answers", record=rec)
            continue
        image = image_or_bad(ocrvqa_image(ctx.image_root, book_id, rec.get("imageURL", "")), book_id, file.name, rec)
        if isinstance(image, BadRecord):
            yield image
            continue
        meta = {"split": split, "source": "ocrvqa", "book_id": book_id, "title": rec.get("title"),
                "author": rec.get("authorName"), "genre": rec.get("genre")}
        for i, (q, a) in enumerate(zip(questions, answers)):
            qid = f"{book_id}_{i}"
            if a is None or str(a).strip() == "":
                yield BadRecord(record_id=qid, reason=NO_ANSWER, file=file.name, detail=f"question {q!r}", record=rec)
                continue
            yield Example(id=qid, image=image, question=str(q), answer=str(a), qtype="ocrvqa", metadata=dict(meta))
