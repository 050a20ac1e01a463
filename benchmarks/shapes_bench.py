"""The synthetic ``shapes`` world as a benchmark, scored per question type.

Data: a dataset folder written by ``vpd data shapes`` (``examples.jsonl`` + ``images/``) or the
``examples.jsonl`` file itself; ``split`` (option) keeps only that split's questions. Scoring uses
the ``shapes`` answer checker of :mod:`vpd.checkers` (the same checker that verifies programs, so
eval and verification agree): ``accuracy`` counts lenient matches (number words, option text for a
letter, yes/no spellings), ``strict_accuracy`` exact matches after normalisation; both overall and
per ``qtype`` (count_simple, count_complex, exists, attribute, spatial, compare, choice).
Predictions: ``id``, ``prediction``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Hashable

from vpd.benchmarks.registry import (
    BENCHMARKS, Benchmark, DataFormatError, Item, Prediction, Results, mean,
)
from vpd.types import Example

SCORER_VERSION = "shapes-1.0 (vpd.checkers shapes)"


@BENCHMARKS.register("shapes")
class ShapesBench(Benchmark):
    """The shapes world's questions, sliced by question type."""

    name = "shapes"
    id_field = "id"
    scorer_version = SCORER_VERSION
    slice_kinds = ("qtype",)
    checker = "shapes"
    reference = "vpd.checkers.ShapesChecker (lenient and strict)"

    def __init__(self, *, split: str | None = None) -> None:
        self.split = split

    def data_files(self, path: str | Path) -> list[Path]:
        path = Path(path)
        return [path / "examples.jsonl" if path.is_dir() else path]

    def load(self, path: str | Path) -> list[Item]:
        from vpd.datasets import read_examples

        try:
            examples, bad = read_examples(path)
        except FileNotFoundError as exc:
            raise DataFormatError(str(exc)) from None
        if bad:
            first = bad[0]
            raise DataFormatError(f"{first.path}: line {first.line}: {first.error} "
                                  f"({len(bad)} bad line(s) in all)")
        items = []
        for ex in examples:
            if self.split and ex.metadata.get("split") != self.split:
                continue
            items.append(Item(id=ex.id, question=ex.question, gold=ex.answer, image=ex.image,
                              choices=ex.choices, slices={"qtype": ex.qtype or "unknown"},
                              raw={"example": ex.to_dict()}))
        if not items:
            raise DataFormatError(f"{path}: no questions" + (f" in split {self.split!r}" if self.split else ""))
        return items

    def example(self, item: Item) -> Example:
        return Example.from_dict(item.raw["example"])

    def prompt(self, item: Item, key: Hashable) -> str:
        return item.question

    def extract(self, text: str, item: Item | None = None) -> str:
        from vpd.checkers import get_checker

        if item is None:
            return str(text).strip()
        return get_checker("shapes").normalize(text, self.example(item))

    def score(self, items: list[Item], predictions: dict[Hashable, Prediction], *,
              strict: bool = False) -> Results:
        from vpd.checkers import get_checker

        checker = get_checker("shapes")
        matched, missing, extra = self.match(items, predictions, strict=strict)
        per_item = []
        for it in items:
            pred = matched.get(it.id)
            if pred is None:
                per_item.append({"id": it.id, "gold": it.gold, "extracted": None, "correct": 0,
                                 "strict": 0, "slices": dict(it.slices)})
                continue
            ex = self.example(it)
            verdict = checker.check(pred.prediction, ex)
            per_item.append({"id": it.id, "gold": it.gold, "extracted": checker.normalize(pred.prediction, ex),
                             "correct": int(verdict.lenient), "strict": int(verdict.strict),
                             "detail": verdict.detail, "slices": dict(it.slices)})
        metrics = {"accuracy": mean(r["correct"] for r in per_item),
                   "strict_accuracy": mean(r["strict"] for r in per_item)}
        groups: dict[str, list[dict]] = {}
        for r in per_item:
            groups.setdefault(r["slices"]["qtype"], []).append(r)
        slices = {"qtype": {q: {"accuracy": mean(r["correct"] for r in g),
                                "strict_accuracy": mean(r["strict"] for r in g), "n": len(g)}
                            for q, g in sorted(groups.items())}}
        return Results(benchmark=self.name, scorer_version=f"{self.scorer_version}; checker {checker.tag}",
                       metrics=metrics, slices=slices,
                       counts={"n": len(items), "missing": len(missing), "extra": len(extra)},
                       missing=tuple(missing), extra=tuple(extra), per_item=tuple(per_item))
