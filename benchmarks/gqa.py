"""GQA: balanced questions scored as the official ``eval.py`` (gqadataset.org) scores them.

Upstream's accuracy is a plain exact match, ``predicted == gold`` on the strings, averaged over the
questions with ``isBalanced`` true; it applies **no** normalisation (predictions are expected to be
answers from GQA's vocabulary: lower case, no articles, no final period). Upstream also prints
``binary`` and ``open`` accuracy (structural type ``query`` is open, every other type binary) and
accuracy per structural and semantic type; we report those as ``binary`` / ``open`` metrics and the
``structural`` / ``semantic`` slices.

``accuracy_normalized`` (lenient, not upstream's) compares after the VQA answer normalisation of
both sides (:func:`vpd.benchmarks.vqa_normalize.normalize_vqa`: case, punctuation, articles,
number words), which forgives "Cat." for ``cat``.

Data: ``<split>_balanced_questions.json`` (``{questionId: {imageId, question, answer, fullAnswer,
isBalanced, types}}``). Predictions: ``questionId`` and ``prediction`` (upstream's field names).
A balanced question without a prediction scores 0 and is listed (upstream refuses the file).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Hashable

from vpd.benchmarks.registry import (
    BENCHMARKS, Benchmark, DataFormatError, Item, Prediction, Results, mean, slice_accuracy,
)
from vpd.benchmarks.vqa_normalize import normalize_vqa

SCORER_VERSION = "gqa-1.0 (gqadataset.org eval.py: exact match over balanced questions)"


@BENCHMARKS.register("gqa")
class GQA(Benchmark):
    """GQA balanced questions; official exact-match accuracy plus binary/open and type slices."""

    name = "gqa"
    id_field = "questionId"
    scorer_version = SCORER_VERSION
    checker = "vqa"  # vpd.checkers name used when verifying programs on this benchmark
    slice_kinds = ("structural", "semantic")
    reference = "GQA eval.py (cs.stanford.edu/people/dorarad/gqa/evaluate.html)"

    def __init__(self, *, image_root: str | Path | None = None) -> None:
        self.image_root = Path(image_root) if image_root else None

    def load(self, path: str | Path) -> list[Item]:
        path = Path(path)
        if path.is_dir():
            files = sorted(path.glob("*_balanced_questions.json")) or sorted(path.glob("*questions*.json"))
            if len(files) != 1:
                raise DataFormatError(f"{path}: expected one *_balanced_questions.json, found {len(files)}")
            path = files[0]
        if not path.is_file():
            raise DataFormatError(f"no GQA questions file at {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}: not JSON ({exc})") from None
        if not isinstance(data, dict):
            raise DataFormatError(f"{path}: expected a JSON object {{questionId: question}}")
        items = []
        for qid, q in data.items():
            if not isinstance(q, dict) or "question" not in q:
                raise DataFormatError(f"{path}: question {qid}: not an object with a 'question'")
            types = q.get("types") or {}
            slices = {k: str(types[k]) for k in self.slice_kinds if types.get(k)}
            if types.get("structural"):
                slices["answer_type"] = "open" if types["structural"] == "query" else "binary"
            image = None
            if q.get("imageId") is not None:
                image = str((self.image_root or path.parent) / "images" / f"{q['imageId']}.jpg")
            items.append(Item(id=str(qid), question=str(q["question"]), gold=q.get("answer"), image=image,
                              slices=slices, raw={"questionId": str(qid), "__id_value__": str(qid),
                                                  "isBalanced": bool(q.get("isBalanced", True))}))
        return items

    def extract(self, text: str, item: Item | None = None) -> str:
        return str(text)

    def score(self, items: list[Item], predictions: dict[Hashable, Prediction], *,
              strict: bool = False) -> Results:
        if any(it.gold is None for it in items):
            raise DataFormatError("this GQA file has no answers (a test/challenge split): it cannot be scored locally")
        scored = [it for it in items if it.raw.get("isBalanced", True)]
        matched, missing, extra = self.match(items, predictions, strict=strict)
        scored_ids = {it.id for it in scored}
        missing = [m for m in missing if m in scored_ids]  # upstream needs predictions for balanced ones only
        per_item = []
        for it in scored:
            pred = matched.get(it.id)
            text = None if pred is None else pred.prediction
            per_item.append({"id": it.id, "gold": it.gold, "extracted": text,
                             "correct": int(text is not None and text == it.gold),
                             "correct_normalized": int(text is not None and normalize_vqa(text) == normalize_vqa(it.gold)),
                             "slices": dict(it.slices)})
        metrics = {"accuracy": mean(r["correct"] for r in per_item),
                   "accuracy_normalized": mean(r["correct_normalized"] for r in per_item)}
        for kind in ("binary", "open"):
            rows = [r for r in per_item if r["slices"].get("answer_type") == kind]
            if rows:
                metrics[kind] = mean(r["correct"] for r in rows)
        return Results(benchmark=self.name, scorer_version=self.scorer_version, metrics=metrics,
                       slices=slice_accuracy(per_item, self.slice_kinds),
                       counts={"n": len(scored), "not_balanced": len(items) - len(scored),
                               "missing": len(missing), "extra": len(extra)},
                       missing=tuple(missing), extra=tuple(extra), per_item=tuple(per_item))
