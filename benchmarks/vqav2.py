"""VQAv2: the official VQA accuracy (GT-Vision-Lab/VQA ``vqaEval.py``), per answer and question type.

:func:`vqa_accuracy` is the official per-question number, step by step:

1. newlines and tabs in the prediction and in each of the (10) annotator answers become spaces;
   both are stripped;
2. **only if the annotators disagree** (more than one distinct answer after step 1) are the
   answers and the prediction normalised (:mod:`vpd.benchmarks.vqa_normalize`: punctuation,
   number words zero..ten to digits, articles dropped, contractions restored). When all ten agree,
   the comparison is exact — upstream's rule, kept so the numbers match (``"two"`` scores 0
   against ten ``"2"``);
3. for each annotator ``i``, ``min(1, #{j != i : answer_j == prediction} / 3)``; the question's
   accuracy is the mean over the 10 leave-one-out subsets (10 choose 9).

``accuracy`` is the mean over questions (a fraction; upstream prints percent rounded to 2
places). Slices: ``answer_type`` (yes/no, number, other) and ``question_type``, as upstream's
``perAnswerType`` / ``perQuestionType``. A question without a prediction scores 0 and is listed
(upstream refuses such a results file).

Data: the folder holding ``v2_OpenEnded_mscoco_<split>_questions.json`` and
``v2_mscoco_<split>_annotations.json`` (or the annotations file; questions are looked up beside
it). Questions scored = the annotated ones. Predictions: ``question_id`` and ``prediction`` (or
upstream's ``answer``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Hashable, Sequence

from vpd.benchmarks.registry import (
    BENCHMARKS, Benchmark, DataFormatError, Item, Prediction, Results, mean, slice_accuracy,
)
from vpd.benchmarks.vqa_normalize import process_digit_article, process_punctuation

SCORER_VERSION = "vqav2-1.0 (GT-Vision-Lab/VQA vqaEval: conditional normalisation, 10-choose-9 average)"


def _clean(text: str) -> str:
    return str(text).replace("\n", " ").replace("\t", " ").strip()


def vqa_accuracy(prediction: str, answers: Sequence[str]) -> float:
    """The official VQA accuracy of ``prediction`` against the annotators' ``answers`` (see the module docstring)."""
    if not answers:
        raise ValueError("VQA accuracy needs at least one annotator answer")
    res = _clean(prediction)
    gts = [_clean(a) for a in answers]
    if len(set(gts)) > 1:
        gts = [process_digit_article(process_punctuation(a)) for a in gts]
        res = process_digit_article(process_punctuation(res))
    accs = [min(1.0, sum(1 for j, g in enumerate(gts) if j != i and g == res) / 3.0) for i in range(len(gts))]
    return sum(accs) / len(accs)


def _load_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise DataFormatError(f"{path}: not readable JSON ({exc})") from None
    if not isinstance(data, dict):
        raise DataFormatError(f"{path}: expected a JSON object")
    return data


@BENCHMARKS.register("vqav2")
class VQAv2(Benchmark):
    """VQAv2 open-ended questions scored with the official VQA accuracy."""

    name = "vqav2"
    id_field = "question_id"
    scorer_version = SCORER_VERSION
    checker = "vqa"  # vpd.checkers name used when verifying programs on this benchmark
    slice_kinds = ("answer_type", "question_type")
    reference = "GT-Vision-Lab/VQA PythonEvaluationTools/vqaEvaluation/vqaEval.py"
    annotation_glob = "*annotations*.json"
    question_glob = "*questions*.json"

    def __init__(self, *, image_root: str | Path | None = None) -> None:
        self.image_root = Path(image_root) if image_root else None

    def data_files(self, path: str | Path) -> list[Path]:
        path = Path(path)
        if path.is_file():
            return [path, *self._questions_beside(path)]
        anns = sorted(path.glob(self.annotation_glob))
        if len(anns) != 1:
            raise DataFormatError(f"{path}: expected one {self.annotation_glob} file, found {len(anns)}")
        return [anns[0], *self._questions_beside(anns[0])]

    def _questions_beside(self, ann: Path) -> list[Path]:
        qs = sorted(ann.parent.glob(self.question_glob))
        return qs[:1]

    def load(self, path: str | Path) -> list[Item]:
        path = Path(path)
        if not path.exists():
            raise DataFormatError(f"no {self.name} annotations at {path}")
        files = self.data_files(path)
        ann_file = files[0]
        data = _load_json(ann_file)
        anns = data.get("annotations")
        if not isinstance(anns, list):
            raise DataFormatError(f"{ann_file}: expected {{'annotations': [...]}} (VQA annotations format)")
        questions: dict[str, str] = {}
        if len(files) > 1:
            qdata = _load_json(files[1]).get("questions") or []
            questions = {str(q["question_id"]): str(q.get("question", "")) for q in qdata
                         if isinstance(q, dict) and "question_id" in q}
        subtype = str(data.get("data_subtype") or "val2014")
        items, seen = [], set()
        for i, ann in enumerate(anns):
            where = f"{ann_file}: annotation {i}"
            if not isinstance(ann, dict) or "question_id" not in ann:
                raise DataFormatError(f"{where}: missing field 'question_id'")
            qid = str(ann["question_id"])
            answers = [str(a["answer"]) for a in ann.get("answers") or [] if isinstance(a, dict) and "answer" in a]
            if not answers:
                raise DataFormatError(f"{where} (question_id {qid}): no annotator answers")
            if qid in seen:
                raise DataFormatError(f"{where}: duplicate question_id {qid}")
            seen.add(qid)
            image = None
            if ann.get("image_id") is not None:
                root = self.image_root or ann_file.parent
                image = str(root / subtype / f"COCO_{subtype}_{int(ann['image_id']):012d}.jpg")
            slices = {k: str(ann[k]) for k in self.slice_kinds if ann.get(k) is not None}
            items.append(Item(id=qid, question=questions.get(qid, ""), gold=answers, image=image, slices=slices,
                              raw={"question_id": ann["question_id"], "__id_value__": ann["question_id"]}))
        return items

    def extract(self, text: str, item: Item | None = None) -> str:
        return _clean(text)

    def score(self, items: list[Item], predictions: dict[Hashable, Prediction], *,
              strict: bool = False) -> Results:
        matched, missing, extra = self.match(items, predictions, strict=strict)
        per_item = []
        for it in items:
            pred = matched.get(it.id)
            acc = vqa_accuracy(pred.prediction, it.gold) if pred is not None else 0.0
            per_item.append({"id": it.id, "gold": it.gold, "extracted": None if pred is None else _clean(pred.prediction),
                             "correct": acc, "slices": dict(it.slices)})
        return Results(benchmark=self.name, scorer_version=self.scorer_version,
                       metrics={"accuracy": mean(r["correct"] for r in per_item)},
                       slices=slice_accuracy(per_item, self.slice_kinds),
                       counts={"n": len(items), "missing": len(missing), "extra": len(extra)},
                       missing=tuple(missing), extra=tuple(extra), per_item=tuple(per_item))
