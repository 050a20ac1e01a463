"""A-OKVQA: multiple choice and direct answer, scored as allenai/aokvqa ``evaluation/eval_predictions.py``.

Headline numbers are upstream's (fractions here; upstream prints percent):

* ``mc_accuracy`` (MC): over **every** question with a ``correct_choice_idx`` (difficult ones
  included), 1 if the predicted string equals ``choices[correct_choice_idx]`` exactly, else 0.
* ``da_accuracy`` (DA): over questions with ``difficult_direct_answer == False`` only (``n_da``),
  ``min(1, #annotators whose direct answer equals the prediction exactly / 3)`` — no
  normalisation, no leave-one-out average.
* A question without a prediction scores 0 (upstream's non-strict mode). Upstream's MC reads only
  ``multiple_choice`` and DA only ``direct_answer``; a line with just ``prediction`` is used for both.

Lenient variants, suffixed so nobody mistakes them for the official numbers:
``mc_accuracy_extracted`` maps a model's raw text to a choice first (:meth:`AOKVQA.extract`: the
choice equal after VQA normalisation, else a lone option letter (VLMEvalKit ``can_infer_option``),
else the one choice whose text occurs in the answer); ``da_accuracy_normalized`` compares after the
VQA answer normalisation (:mod:`vpd.benchmarks.vqa_normalize`).

Data: the released ``aokvqa_v1p0_{train,val}.json`` (a JSON list with ``question_id, image_id,
question, choices, correct_choice_idx, direct_answers, difficult_direct_answer, rationales``).
Predictions: JSONL (``question_id`` and ``prediction``, or ``multiple_choice`` / ``direct_answer``)
or upstream's own ``predictions_{split}.json`` (``{question_id: {multiple_choice, direct_answer}}``).
Images: ``<image_root>/<split>2017/<image_id:012d>.jpg`` (COCO 2017 layout) when running a model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Hashable

from vpd.benchmarks.mmbench import OPTION_LETTERS, can_infer_option, can_infer_text
from vpd.benchmarks.registry import (
    BENCHMARKS, BadPredictionLine, Benchmark, DataFormatError, Item, Prediction, PredictionError, Results, mean,
    slice_accuracy,
)
from vpd.benchmarks.vqa_normalize import normalize_vqa
from vpd.types import JSON

SCORER_VERSION = "aokvqa-2.0 (allenai/aokvqa eval_predictions: exact MC and DA; lenient variants suffixed)"


def da_score(prediction: str, direct_answers: list[str], *, normalize: bool = False) -> float:
    """``min(1, #matching annotators / 3)``; exact string match as upstream, or after VQA normalisation."""
    if normalize:
        pred = normalize_vqa(prediction)
        matches = sum(1 for da in direct_answers if normalize_vqa(da) == pred)
    else:
        matches = sum(1 for da in direct_answers if prediction == da)
    return min(1.0, matches / 3.0)


@BENCHMARKS.register("aokvqa")
class AOKVQA(Benchmark):
    """A-OKVQA multiple choice (MC) and direct answer (DA)."""

    name = "aokvqa"
    id_field = "question_id"
    scorer_version = SCORER_VERSION
    checker = "vqa"  # vpd.checkers name used when verifying programs on this benchmark
    slice_kinds = ("setting",)
    reference = "allenai/aokvqa evaluation/eval_predictions.py"

    def __init__(self, *, image_root: str | Path | None = None, setting: str = "mc", coco_split: str = "val") -> None:
        if setting not in ("mc", "da"):
            raise ValueError("setting must be 'mc' or 'da'")
        self.image_root = Path(image_root) if image_root else None
        self.setting = setting
        self.coco_split = coco_split

    def load(self, path: str | Path) -> list[Item]:
        path = Path(path)
        if path.is_dir():
            files = sorted(path.glob("aokvqa_*val*.json")) or sorted(path.glob("*.json"))
            if not files:
                raise DataFormatError(f"{path}: no A-OKVQA .json file")
            path = files[0]
        if not path.is_file():
            raise DataFormatError(f"no A-OKVQA JSON at {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise DataFormatError(f"{path}: not JSON ({exc})") from None
        if not isinstance(data, list):
            raise DataFormatError(f"{path}: expected a JSON list of questions")
        items, seen = [], set()
        for i, rec in enumerate(data):
            where = f"{path}: record {i}"
            for key in ("question_id", "question", "choices"):
                if not isinstance(rec, dict) or key not in rec:
                    raise DataFormatError(f"{where}: missing field {key!r}")
            qid = str(rec["question_id"])
            if qid in seen:
                raise DataFormatError(f"{where}: duplicate question_id {qid}")
            seen.add(qid)
            choices = tuple(str(c) for c in rec["choices"])
            idx = rec.get("correct_choice_idx")
            if idx is not None and not (isinstance(idx, int) and 0 <= idx < len(choices)):
                raise DataFormatError(f"{where} ({qid}): correct_choice_idx {idx!r} out of range")
            gold = {"choice": choices[idx] if idx is not None else None,
                    "direct_answers": list(rec.get("direct_answers") or []),
                    "difficult": bool(rec.get("difficult_direct_answer", False))}
            image = None
            if rec.get("image_id") is not None:
                root = self.image_root or path.parent
                image = str(root / f"{self.coco_split}2017" / f"{int(rec['image_id']):012d}.jpg")
            items.append(Item(id=qid, question=str(rec["question"]), gold=gold, image=image,
                              choices=choices, raw={"question_id": rec["question_id"],
                                                     "__id_value__": rec["question_id"]}))
        return items

    def prediction_from_record(self, rec: dict[str, JSON], lineno: int) -> Prediction:
        if "prediction" not in rec and ("multiple_choice" in rec or "direct_answer" in rec):
            rec = {**rec, "prediction": rec.get("multiple_choice") or rec.get("direct_answer") or ""}
        return super().prediction_from_record(rec, lineno)

    def read_predictions(self, path: str | Path) -> tuple[dict[Hashable, Prediction], list[BadPredictionLine]]:
        """JSONL, or upstream's ``{question_id: {"multiple_choice": …, "direct_answer": …}}`` JSON object."""
        path = Path(path)
        if not path.is_file():
            raise PredictionError(f"no predictions file at {path}")
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError:
            data = None  # JSON lines
        if not (isinstance(data, dict) and self.id_field not in data):
            return super().read_predictions(path)
        preds: dict[Hashable, Prediction] = {}
        bad: list[BadPredictionLine] = []
        for n, (qid, entry) in enumerate(data.items(), 1):
            if not isinstance(entry, dict) or not ({"multiple_choice", "direct_answer"} & set(entry)):
                bad.append(BadPredictionLine(line=n, error=f"{qid}: expected {{multiple_choice, direct_answer}}"))
                continue
            extra = {k: str(entry[k]) for k in ("multiple_choice", "direct_answer") if k in entry}
            preds[str(qid)] = Prediction(id=str(qid), prediction="", extra=extra, line=n)
        return preds, bad

    def choices_for(self, item: Item, key: Hashable) -> tuple[str, ...] | None:
        return item.choices if self.setting == "mc" else None

    def extract(self, text: str, item: Item | None = None) -> str | None:
        """The choice text a raw answer names (see the module docstring), or None."""
        if item is None or not item.choices:
            return None
        norm = normalize_vqa(text)
        for c in item.choices:
            if normalize_vqa(c) == norm:
                return c
        letters = {OPTION_LETTERS[j]: c for j, c in enumerate(item.choices)}
        opt = can_infer_option(str(text), letters)
        if opt and opt in letters:
            return letters[opt]
        opt = can_infer_text(str(text), dict(letters))
        return letters[opt] if opt else None

    def score(self, items: list[Item], predictions: dict[Hashable, Prediction], *,
              strict: bool = False) -> Results:
        matched, missing, extra = self.match(items, predictions, strict=strict)
        per_item = []
        for it in items:
            mc_text, da_text = _texts(matched.get(it.id))
            gold = it.gold
            row: dict[str, JSON] = {"id": it.id, "gold": gold["choice"], "prediction": mc_text, "slices": {}}
            if gold["choice"] is not None:
                choice = self.extract(mc_text, it) if mc_text is not None else None
                row.update(extracted=choice, correct=int(mc_text is not None and mc_text == gold["choice"]),
                           correct_extracted=int(choice is not None and choice == gold["choice"]))
            if not gold["difficult"] and gold["direct_answers"]:
                das = gold["direct_answers"]
                row["da"] = da_score(da_text, das) if da_text is not None else 0.0
                row["da_normalized"] = da_score(da_text, das, normalize=True) if da_text is not None else 0.0
            per_item.append(row)
        mc_rows = [r for r in per_item if "correct" in r]
        da_rows = [r for r in per_item if "da" in r]
        metrics = {"mc_accuracy": mean(r["correct"] for r in mc_rows),
                   "da_accuracy": mean(r["da"] for r in da_rows),
                   "mc_accuracy_extracted": mean(r["correct_extracted"] for r in mc_rows),
                   "da_accuracy_normalized": mean(r["da_normalized"] for r in da_rows)}
        return Results(benchmark=self.name, scorer_version=self.scorer_version, metrics=metrics,
                       slices=slice_accuracy(per_item, ()),
                       counts={"n": len(items), "n_mc": len(mc_rows), "n_da": len(da_rows),
                               "missing": len(missing), "extra": len(extra)},
                       missing=tuple(missing), extra=tuple(extra), per_item=tuple(per_item))


def _texts(pred: Prediction | None) -> tuple[str | None, str | None]:
    """The MC and DA texts of a prediction: upstream's fields when given, else ``prediction`` for both."""
    if pred is None:
        return None, None
    if "multiple_choice" in pred.extra or "direct_answer" in pred.extra:
        mc, da = pred.extra.get("multiple_choice"), pred.extra.get("direct_answer")
        return (None if mc is None else str(mc)), (None if da is None else str(da))
    return pred.prediction, pred.prediction
