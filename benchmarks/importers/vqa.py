"""VQAv2 and OK-VQA: the VQA-format questions + annotations JSON pair, COCO images.

Release files (visualqa.org; okvqa.allenai.org), in ``--from DIR``:

* VQAv2: ``v2_OpenEnded_mscoco_{train,val}2014_questions.json`` (``{"questions": [{image_id,
  question, question_id}]}``) and ``v2_mscoco_{train,val}2014_annotations.json``
  (``{"annotations": [{question_id, image_id, question_type, answer_type, multiple_choice_answer,
  answers: [{answer, answer_confidence, answer_id}] x 10}]}``); test(-dev) 2015 questions only.
* OK-VQA: ``OpenEnded_mscoco_{train,val}2014_questions.json`` and ``mscoco_{train,val}2014_annotations.json``
  (same fields; answers also carry ``raw_answer``).

Images: COCO, ``IMAGES/{train,val}2014/COCO_{split}2014_{image_id:012d}.jpg`` (``test2015`` for
the test splits), or the same file name directly in ``IMAGES``.

Each example: ``answer`` = ``multiple_choice_answer`` (else the most frequent annotator answer),
``metadata["answers"]`` = the ten annotator answers in order (what the VQA scorer needs),
``question_id``, ``image_id``, ``question_type``, ``answer_type``, ``split``, ``source``.
The test splits (``test``, ``test-dev``: 2015 questions, no annotations file) are registered as
unlabelled: only the questions file is read and every example has ``answer`` null (no ``answers``).
OK-VQA publishes no unlabelled split (its val annotations are the test set).
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Iterator

from vpd.benchmarks.importers.base import (
    MALFORMED, NO_ANSWER, BadRecord, ImportContext, ImportSourceError, image_or_bad, load_json,
    register_importer,
)
from vpd.types import Example

_COCO_DIR = {"train": "train2014", "val": "val2014", "test": "test2015", "test-dev": "test2015"}
_TEST_2015 = ("test", "test-dev")


def coco_image(root: Path, split: str, image_id: int) -> Path:
    """The COCO image of ``image_id`` under ``root`` (``root/<dir>/<name>`` if present, else ``root/<name>``)."""
    folder = _COCO_DIR[split]
    name = f"COCO_{folder}_{int(image_id):012d}.jpg"
    nested = root / folder / name
    return nested if nested.is_file() or not (root / name).is_file() else root / name


def majority_answer(answers: list[str]) -> str:
    """The most frequent answer (ties: the first given)."""
    counts = Counter(answers)
    best = max(counts.values())
    return next(a for a in answers if counts[a] == best)


def _read_vqa_format(ctx: ImportContext, source: str, q_patterns: tuple[str, ...],
                     a_patterns: tuple[str, ...]) -> Iterator[Example | BadRecord]:
    year = "2015" if ctx.split in _TEST_2015 else "2014"
    split_tag = ctx.split + year
    q_file = _find(ctx, q_patterns, split_tag)
    questions = load_json(q_file)
    if not isinstance(questions, dict) or not isinstance(questions.get("questions"), list):
        raise ImportSourceError(f"{q_file}: expected {{'questions': [...]}} (VQA questions format)")
    annotations: dict[str, dict] = {}
    if not ctx.unlabelled:
        a_file = _find(ctx, a_patterns, split_tag)
        data = load_json(a_file)
        if not isinstance(data, dict) or not isinstance(data.get("annotations"), list):
            raise ImportSourceError(f"{a_file}: expected {{'annotations': [...]}} (VQA annotations format)")
        annotations = {str(a.get("question_id")): a for a in data["annotations"] if isinstance(a, dict)}
    file = q_file.name
    for i, q in enumerate(questions["questions"]):
        if not isinstance(q, dict) or any(k not in q for k in ("question_id", "image_id", "question")):
            yield BadRecord(record_id=f"#{i}", reason=MALFORMED, file=file,
                            detail="needs question_id, image_id and question", record=q if isinstance(q, dict) else {})
            continue
        qid = str(q["question_id"])
        ann = annotations.get(qid)
        answers: list[str] = []
        if ann is not None:
            answers = [str(a["answer"]) for a in ann.get("answers") or [] if isinstance(a, dict) and "answer" in a]
        if not ctx.unlabelled and not answers:
            yield BadRecord(record_id=qid, reason=NO_ANSWER, file=file,
                            detail="no annotation" if ann is None else "annotation has no answers", record=q)
            continue
        try:
            image = image_or_bad(coco_image(ctx.image_root, ctx.split, int(q["image_id"])), qid, file, q)
        except (TypeError, ValueError):
            yield BadRecord(record_id=qid, reason=MALFORMED, file=file, detail=f"image_id {q['image_id']!r}", record=q)
            continue
        if isinstance(image, BadRecord):
            yield image
            continue
        meta = {"split": ctx.split, "source": source, "question_id": q["question_id"], "image_id": q["image_id"]}
        answer = None
        if answers:
            answer = str(ann.get("multiple_choice_answer") or majority_answer(answers))
            meta.update(answers=answers, question_type=ann.get("question_type"), answer_type=ann.get("answer_type"))
        yield Example(id=qid, image=image, question=str(q["question"]), answer=answer, qtype=source, metadata=meta)


def _find(ctx: ImportContext, patterns: tuple[str, ...], split_tag: str) -> Path:
    if ctx.source.is_file():
        raise ImportSourceError(f"{ctx.source}: pass the folder holding the questions and annotations files")
    return ImportContext(source=ctx.source, split=split_tag, out=ctx.out).find(*patterns)


@register_importer("vqav2", splits=("train", "val", "test-dev", "test"), unlabelled=_TEST_2015,
                   layout="v2_OpenEnded_mscoco_<split>_questions.json + v2_mscoco_<split>_annotations.json; "
                          "COCO images under --images")
def read_vqav2(ctx: ImportContext) -> Iterator[Example | BadRecord]:
    return _read_vqa_format(ctx, "vqav2", ("v2_OpenEnded_mscoco_{split}_questions.json", "*{split}*questions*.json"),
                            ("v2_mscoco_{split}_annotations.json", "*{split}*annotations*.json"))


@register_importer("okvqa", splits=("train", "val"),
                   layout="OpenEnded_mscoco_<split>2014_questions.json + mscoco_<split>2014_annotations.json; "
                          "COCO 2014 images under --images")
def read_okvqa(ctx: ImportContext) -> Iterator[Example | BadRecord]:
    return _read_vqa_format(ctx, "okvqa", ("OpenEnded_mscoco_{split}_questions.json", "*{split}*questions*.json"),
                            ("mscoco_{split}_annotations.json", "*{split}*annotations*.json"))
