"""MMBench: the official TSV (``MMBench_DEV_EN.tsv`` …) with base64 images.

Columns ``index, question, hint, A, B, C, D, (E…), answer, category, l2-category, image``
(``image`` base64, or the index of the row holding it). Images are decoded into
``OUT/images/mmbench-{index}.png`` (the only importer that writes images: MMBench ships them
inside the TSV). Each example: ``choices`` = the non-empty option texts, ``answer`` = the letter
(none in the test split), the question prefixed with ``Hint: …`` when the row has a hint (as
:class:`vpd.benchmarks.mmbench.MMBench` asks it), ``metadata``: ``index``, ``hint``, ``category``,
``l2-category``, ``split``, ``source``. Rows with ``index >= 1e6`` (VLMEvalKit's rotated copies)
are imported as they are, each with its own options and answer.
"""

from __future__ import annotations

import base64
import binascii
import csv
import io
import sys
from typing import Iterator

from vpd.benchmarks.importers.base import (
    MALFORMED, MISSING_IMAGE, NO_ANSWER, BadRecord, ImportContext, ImportSourceError, register_importer,
)
from vpd.types import Example

LETTERS = ("A", "B", "C", "D", "E", "F", "G", "H", "I")


def _blank(v: str | None) -> bool:
    return v is None or v.strip() == "" or v.strip().lower() == "nan"


@register_importer("mmbench", splits=("dev", "test"), unlabelled=("test",),
                   layout="MMBench_<SPLIT>_EN.tsv (or *<split>*.tsv) with base64 images")
def read_mmbench(ctx: ImportContext) -> Iterator[Example | BadRecord]:
    from PIL import Image, UnidentifiedImageError

    file = ctx.find("MMBench_{split}_EN.tsv", "MMBench_" + ctx.split.upper() + "_EN.tsv", "*{split}*.tsv", "*.tsv")
    csv.field_size_limit(sys.maxsize)
    with file.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        if not reader.fieldnames or "index" not in reader.fieldnames or "question" not in reader.fieldnames:
            raise ImportSourceError(f"{file}: not an MMBench TSV (needs index and question columns)")
        rows = list(reader)
    letters = [c for c in LETTERS if c in (reader.fieldnames or [])]
    images = {str(r.get("index", "")).strip(): r.get("image") or "" for r in rows}
    img_dir = ctx.out / "images"
    for rowno, row in enumerate(rows, 2):
        index = str(row.get("index", "")).strip()
        record = {k: v for k, v in row.items() if k != "image" and k is not None}
        rid = index or f"row {rowno}"
        options = tuple(row[c] for c in letters if not _blank(row.get(c)))
        try:
            index_value = int(float(index))
        except ValueError:
            index_value = None
        if index_value is None or len(options) < 2:
            yield BadRecord(record_id=rid, reason=MALFORMED, file=file.name,
                            detail="needs a numeric index and at least two options", record=record)
            continue
        answer = (row.get("answer") or "").strip() or None
        if ctx.unlabelled and answer not in LETTERS[:len(options)]:
            answer = None  # the test TSV has no answer column (or an empty one)
        if not ctx.unlabelled and answer not in LETTERS[:len(options)]:
            yield BadRecord(record_id=rid, reason=NO_ANSWER, file=file.name,
                            detail=f"answer {row.get('answer')!r} is not one of {', '.join(LETTERS[:len(options)])}",
                            record=record)
            continue
        payload, hops = images.get(index, ""), 0
        while payload.strip().isdigit() and len(payload.strip()) <= 12 and hops < 4:
            payload, hops = images.get(payload.strip(), ""), hops + 1  # a reference to another row's image
        if _blank(payload):
            yield BadRecord(record_id=rid, reason=MISSING_IMAGE, file=file.name, detail="empty image column",
                            record=record)
            continue
        out = img_dir / f"mmbench-{index}.png"
        try:
            img = Image.open(io.BytesIO(base64.b64decode(payload, validate=True)))
            img.load()
            img_dir.mkdir(parents=True, exist_ok=True)
            img.convert("RGB").save(out)
        except (binascii.Error, ValueError, UnidentifiedImageError, OSError) as exc:
            yield BadRecord(record_id=rid, reason=MISSING_IMAGE, file=file.name,
                            detail=f"undecodable base64 image ({exc})", record=record)
            continue
        hint = "" if _blank(row.get("hint")) else str(row["hint"])
        question = f"Hint: {hint}\n{row['question']}" if hint else str(row["question"])
        meta = {"split": ctx.split, "source": "mmbench", "index": index_value, "hint": hint,
                "category": row.get("category"), "l2-category": row.get("l2-category")}
        yield Example(id=index, image=str(out.resolve()), question=question, answer=answer, choices=options,
                      qtype="mmbench", metadata=meta)
