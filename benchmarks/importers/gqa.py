"""GQA: the balanced questions JSON, the chunked ``all`` questions, and the images folder.

Release files (cs.stanford.edu/people/dorarad/gqa, ``questions1.2/``): ``{split}_balanced_questions.json``
and ``{split}_all_questions.json`` are single JSON objects ``{questionId: {imageId, question, answer,
fullAnswer, isBalanced, types: {structural, semantic, detailed}, ...}}``; the train ``all`` questions
ship as a folder of chunks in the same format, ``train_all_questions/train_all_questions_{0..9}.json``.
Images: ``IMAGES/images/{imageId}.jpg`` (or ``IMAGES/{imageId}.jpg``).

``--from`` may be a file, a glob (``'…/train_all_questions_*.json'``, quoted), a chunk folder, or
the release folder: there the first found of ``{split}_balanced_questions.json``,
``{split}_all_questions.json``, ``{split}_all_questions_*.json`` and
``{split}_all_questions/{split}_all_questions_*.json`` is read. Chunks are read one at a time, in
chunk-number order: only one chunk's JSON is in memory at once.

Each example: ``answer`` = ``answer`` (GQA has one reference answer), ``metadata``: ``full_answer``,
``image_id``, ``is_balanced``, ``structural`` / ``semantic`` / ``detailed`` types, ``split``,
``source``. The test, challenge and submission questions carry no answers and are written unlabelled
(testdev has answers).
"""

from __future__ import annotations

import glob
import re
from pathlib import Path
from typing import Iterator

from vpd.benchmarks.importers.base import (
    MALFORMED, MISSING_IMAGE, NO_ANSWER, BadRecord, ImportContext, ImportSourceError, load_json, register_importer,
)
from vpd.types import Example


def gqa_image(root: Path, image_id: str) -> Path:
    nested = root / "images" / f"{image_id}.jpg"
    return nested if nested.is_file() or not (root / f"{image_id}.jpg").is_file() else root / f"{image_id}.jpg"


def _chunk_order(path: Path) -> tuple[int, str]:
    """Sort key: the chunk number at the end of the stem (``_9`` before ``_10``), then the name."""
    m = re.search(r"(\d+)$", path.stem)
    return (int(m.group(1)) if m else -1, path.name)


def gqa_files(ctx: ImportContext) -> list[Path]:
    """The question files of ``ctx.source`` for ``ctx.split`` (one file, or the chunks in order)."""
    src, split = ctx.source, ctx.split
    if src.is_file():
        return [src]
    if glob.has_magic(str(src)):
        hits = sorted((Path(p) for p in glob.glob(str(src)) if Path(p).is_file()), key=_chunk_order)
        if not hits:
            raise ImportSourceError(f"no file matches {src}")
        return hits
    if not src.is_dir():
        raise ImportSourceError(f"no such file or folder: {src}")
    for name in (f"{split}_balanced_questions.json", f"{split}_all_questions.json"):
        if (src / name).is_file():
            return [src / name]
    for folder in (src, src / f"{split}_all_questions"):
        chunks = sorted(folder.glob(f"{split}_all_questions_*.json"), key=_chunk_order)
        if chunks:
            return chunks
    raise ImportSourceError(f"{src}: no file matching {split}_balanced_questions.json, {split}_all_questions.json "
                            f"or {split}_all_questions[/]{split}_all_questions_*.json (chunks)")


@register_importer("gqa", splits=("train", "val", "testdev", "test", "challenge", "submission"),
                   unlabelled=("test", "challenge", "submission"),
                   layout="<split>_balanced_questions.json, <split>_all_questions.json or the "
                          "<split>_all_questions/ chunks (or a glob); images/<imageId>.jpg under --images")
def read_gqa(ctx: ImportContext) -> Iterator[Example | BadRecord]:
    images: dict[str, Path | None] = {}  # imageId -> file, None if missing (~200 questions per image: one stat)
    for file in gqa_files(ctx):
        yield from _read_file(ctx, file, images)  # each chunk's dict is released before the next is loaded


def _read_file(ctx: ImportContext, file: Path, images: dict[str, Path | None]) -> Iterator[Example | BadRecord]:
    data = load_json(file)
    if not isinstance(data, dict):
        raise ImportSourceError(f"{file}: expected a JSON object {{questionId: question}} (GQA format)")
    for qid, q in data.items():
        if not isinstance(q, dict) or "question" not in q or "imageId" not in q:
            yield BadRecord(record_id=str(qid), reason=MALFORMED, file=file.name, detail="needs imageId and question",
                            record=q if isinstance(q, dict) else {})
            continue
        answer = q.get("answer")
        if not ctx.unlabelled and (answer is None or str(answer).strip() == ""):
            yield BadRecord(record_id=str(qid), reason=NO_ANSWER, file=file.name, record=q)
            continue
        image_id = str(q["imageId"])
        if image_id not in images:
            path = gqa_image(ctx.image_root, image_id)
            images[image_id] = path.resolve() if path.is_file() else None
        image = images[image_id]
        if image is None:
            yield BadRecord(record_id=str(qid), reason=MISSING_IMAGE, file=file.name,
                            detail=f"no file at {gqa_image(ctx.image_root, image_id)}", record=q)
            continue
        types = q.get("types") or {}
        meta = {"split": ctx.split, "source": "gqa", "question_id": str(qid), "image_id": str(q["imageId"]),
                "full_answer": q.get("fullAnswer"), "is_balanced": q.get("isBalanced"),
                "structural": types.get("structural"), "semantic": types.get("semantic"),
                "detailed": types.get("detailed")}
        labelled = answer is not None and str(answer).strip() != ""
        yield Example(id=str(qid), image=str(image), question=str(q["question"]),
                      answer=str(answer) if labelled else None, qtype="gqa", metadata=meta)
