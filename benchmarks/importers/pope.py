"""POPE: ``coco_pope_{random,popular,adversarial}.json`` (JSON lines) and COCO val2014 images.

Release files (AoiDragon/POPE ``output/coco/``): one JSON object per line, ``{question_id, image,
text, label}`` with ``label`` ``yes``/``no`` and ``image`` a COCO val2014 file name (looked up
under ``--images``, then ``--images/val2014``). ``--split`` is the POPE setting (random, popular,
adversarial). ``question_id`` restarts in every setting, so example ids are ``{split}/{question_id}``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

from vpd.benchmarks.importers.base import (
    MALFORMED, NO_ANSWER, BadRecord, ImportContext, image_or_bad, register_importer,
)
from vpd.types import Example


def pope_image(root: Path, name: str) -> Path:
    for p in (root / name, root / "val2014" / name):
        if p.is_file():
            return p
    return root / name


@register_importer("pope", splits=("random", "popular", "adversarial"),
                   layout="coco_pope_<split>.json (JSON lines); COCO val2014 images under --images")
def read_pope(ctx: ImportContext) -> Iterator[Example | BadRecord]:
    file = ctx.find("coco_pope_{split}.json", "coco_pope_{split}.jsonl", "*pope*{split}*.json*")
    with file.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError("not a JSON object")
                qid, text, image_name = rec["question_id"], rec["text"], rec["image"]
            except (ValueError, KeyError) as exc:
                yield BadRecord(record_id=f"line {lineno}", reason=MALFORMED, file=file.name, detail=str(exc),
                                record={"line": line.strip()[:500]})
                continue
            rid = f"{ctx.split}/{qid}"
            label = str(rec.get("label", "")).strip().lower()
            if label not in ("yes", "no"):
                yield BadRecord(record_id=rid, reason=NO_ANSWER, file=file.name,
                                detail=f"label {rec.get('label')!r} is not yes/no", record=rec)
                continue
            image = image_or_bad(pope_image(ctx.image_root, str(image_name)), rid, file.name, rec)
            if isinstance(image, BadRecord):
                yield image
                continue
            yield Example(id=rid, image=image, question=str(text), answer=label, qtype="yesno",
                          metadata={"split": ctx.split, "source": "pope", "question_id": qid})
