"""POPE (object hallucination): ``coco_pope_{random,popular,adversarial}`` files, the official rule.

Follows ``evaluate.py`` of AoiDragon/POPE (also copied verbatim into LLaVA's ``eval_pope.py``):
keep the text before the first ``.``; drop commas; split on single spaces; the answer is **no** if
the words include ``No``, ``not`` or ``no`` (case-sensitive, whole words), otherwise **yes**.
"yes" is the positive class: accuracy, precision = TP/(TP+FP), recall = TP/(TP+FN), F1, and
yes-ratio = the fraction of predictions that are yes; reported per split (random / popular /
adversarial), and their mean overall. Where upstream would divide by zero (no yes predictions) we
report 0.0.

Data: one split file (JSON lines ``question_id, image, text, label``) or a folder of them (the split
is the file name without ``coco_pope_`` and the extension). ``question_id`` restarts in every split
file, so predictions for a folder must carry ``split`` (e.g. ``"split": "popular"``). A question
without a prediction is counted as answered wrongly (the opposite of its label) and listed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Hashable

from vpd.benchmarks.registry import (
    BENCHMARKS, Benchmark, DataFormatError, Item, Prediction, Results, mean,
)
from vpd.types import JSON

SCORER_VERSION = "pope-1.0 (AoiDragon/POPE evaluate.py first-sentence rule)"
SPLIT_ORDER = ("random", "popular", "adversarial")


def pope_yes_no(text: str) -> str:
    """The official POPE rule: ``"no"`` if the first sentence contains the word No/not/no, else ``"yes"``."""
    if text.find(".") != -1:
        text = text.split(".")[0]
    text = text.replace(",", "")
    words = text.split(" ")
    if "No" in words or "not" in words or "no" in words:
        return "no"
    return "yes"


def binary_metrics(preds: list[int], labels: list[int]) -> dict[str, float]:
    """Accuracy, precision, recall, F1, yes-ratio (1 = yes = positive) and the confusion counts."""
    tp = sum(1 for p, l in zip(preds, labels) if p == 1 and l == 1)
    fp = sum(1 for p, l in zip(preds, labels) if p == 1 and l == 0)
    tn = sum(1 for p, l in zip(preds, labels) if p == 0 and l == 0)
    fn = sum(1 for p, l in zip(preds, labels) if p == 0 and l == 1)
    n = len(preds)
    precision = tp / (tp + fp) if tp + fp else 0.0
    recall = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"accuracy": (tp + tn) / n if n else 0.0, "precision": precision, "recall": recall, "f1": f1,
            "yes_ratio": sum(preds) / n if n else 0.0, "tp": tp, "fp": fp, "tn": tn, "fn": fn, "n": n}


def split_name(path: Path) -> str:
    stem = path.name.split(".")[0]
    return stem[len("coco_pope_"):] if stem.startswith("coco_pope_") else stem


@BENCHMARKS.register("pope")
class Pope(Benchmark):
    """POPE yes/no hallucination probing with the official answer rule and per-split metrics."""

    name = "pope"
    id_field = "question_id"
    scorer_version = SCORER_VERSION
    checker = "yesno"  # vpd.checkers name used when verifying programs on this benchmark
    slice_kinds = ("split",)
    reference = "AoiDragon/POPE evaluate.py"

    def __init__(self, *, image_root: str | Path | None = None) -> None:
        self.image_root = Path(image_root) if image_root else None
        self.multi = False

    def data_files(self, path: str | Path) -> list[Path]:
        path = Path(path)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.suffix in {".json", ".jsonl"} and p.is_file())
            if not files:
                raise DataFormatError(f"{path}: no POPE .json/.jsonl split files")
            return files
        return [path]

    def load(self, path: str | Path) -> list[Item]:
        path = Path(path)
        if not path.exists():
            raise DataFormatError(f"no POPE data at {path}")
        files = self.data_files(path)
        self.multi = path.is_dir()
        items: list[Item] = []
        for file in files:
            split = split_name(file)
            seen: set[str] = set()
            with file.open(encoding="utf-8") as fh:
                for lineno, line in enumerate(fh, 1):
                    if not line.strip():
                        continue
                    try:
                        rec = json.loads(line)
                        qid, label = rec["question_id"], str(rec["label"]).strip().lower()
                        text = rec["text"]
                    except (json.JSONDecodeError, KeyError, TypeError) as exc:
                        raise DataFormatError(f"{file}: line {lineno}: bad POPE record ({exc!r})") from None
                    if label not in ("yes", "no"):
                        raise DataFormatError(f"{file}: line {lineno}: label {label!r} is not yes/no")
                    if str(qid) in seen:
                        raise DataFormatError(f"{file}: line {lineno}: duplicate question_id {qid}")
                    seen.add(str(qid))
                    image = rec.get("image")
                    if image is not None:
                        root = self.image_root or file.parent
                        image = str(root / image)
                    item_id = f"{split}/{qid}" if self.multi else str(qid)
                    items.append(Item(id=item_id, question=text, gold=label, image=image,
                                      slices={"split": split},
                                      raw={**rec, "__id_value__": qid, "__split__": split}))
        return items

    def prediction_key(self, record: dict[str, JSON]) -> Hashable:
        qid = str(record["question_id"])
        if self.multi:
            if "split" not in record:
                raise ValueError("predictions for a folder of POPE splits need a 'split' field "
                                 "(question_id restarts in every split)")
            return f"{record['split']}/{qid}"
        return qid

    def key_record(self, item: Item, key: Hashable) -> dict[str, JSON]:
        return {"question_id": item.raw["__id_value__"], "split": item.raw["__split__"]}

    def extract(self, text: str, item: Item | None = None) -> str:
        return pope_yes_no(text)

    def score(self, items: list[Item], predictions: dict[Hashable, Prediction], *,
              strict: bool = False) -> Results:
        matched, missing, extra = self.match(items, predictions, strict=strict)
        per_split: dict[str, tuple[list[int], list[int]]] = {}
        per_item = []
        for it in items:
            label = 1 if it.gold == "yes" else 0
            pred = matched.get(it.id)
            if pred is None:
                p = 1 - label  # no prediction: counted wrong
                ans = None
            else:
                ans = pope_yes_no(pred.prediction)
                p = 1 if ans == "yes" else 0
            ps, ls = per_split.setdefault(it.slices["split"], ([], []))
            ps.append(p)
            ls.append(label)
            per_item.append({"id": it.id, "gold": it.gold, "extracted": ans, "correct": int(p == label),
                             "slices": dict(it.slices)})
        order = sorted(per_split, key=lambda s: (SPLIT_ORDER.index(s) if s in SPLIT_ORDER else 99, s))
        split_metrics = {s: binary_metrics(*per_split[s]) for s in order}
        keys = ("accuracy", "precision", "recall", "f1", "yes_ratio")
        if len(order) == 1:
            metrics = {k: split_metrics[order[0]][k] for k in keys}
        else:
            metrics = {k: mean(split_metrics[s][k] for s in order) for k in keys}
        return Results(benchmark=self.name, scorer_version=self.scorer_version, metrics=metrics,
                       slices={"split": split_metrics},
                       counts={"n": len(items), "missing": len(missing), "extra": len(extra)},
                       missing=tuple(missing), extra=tuple(extra), per_item=tuple(per_item),
                       notes=("overall = mean over splits",) if len(order) > 1 else ())
