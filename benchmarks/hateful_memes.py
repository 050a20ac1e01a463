"""Hateful Memes: the challenge jsonl (``id, img, label, text``), AUROC and accuracy.

The challenge ranks by AUROC over a per-meme score (probability of "hateful") and also reports
accuracy (Kiela et al., NeurIPS 2020; the challenge's submission format is ``id, proba, label``).
AUROC is computed as the Mann-Whitney statistic with ties counted one half (identical to
``sklearn.metrics.roc_auc_score``, average ranks for tied scores).

Predictions: ``id``, ``prediction`` (raw text) and ``score`` (or ``proba``), or the challenge's
own submission lines ``id, proba, label``. A submitted ``label`` (0/1) is used as is, as the
challenge's scorer does. Without one (a model's free text), the predicted label
is read from the text (:func:`extract_label`: "not hateful"/"non-hateful"/"no" -> 0, "hateful"/
"yes" -> 1, or a bare 0/1); text with no label falls back to ``score >= 0.5``. A line with no
``score`` uses its label (1.0 or 0.0) as its score — such a model gives a coarse ROC curve.
``counts["label_from_text"]`` says how many labels were read from text rather than submitted. A meme
without a prediction is counted wrong: the wrong label and the worst score (``1 - label``).
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Hashable

from vpd.benchmarks.registry import (
    BENCHMARKS, Benchmark, DataFormatError, Item, Prediction, Results, mean,
)

SCORER_VERSION = "hateful_memes-1.1 (AUROC Mann-Whitney with ties; accuracy of the submitted label)"
QUESTION = "Is this meme hateful?"

_NEG = re.compile(r"\b(not|non|no|isn't|isnt)\b[\s-]*(?:\w+\s+){0,2}hateful")


def extract_label(text: str) -> int | None:
    """1 (hateful), 0 (not hateful) or None from a model's raw text."""
    t = str(text).strip().lower()
    if not t:
        return None
    if _NEG.search(t) or "benign" in t:
        return 0
    if re.search(r"\bhateful\b", t):
        return 1
    words = re.findall(r"[a-z0-9]+", t)
    if not words:
        return None
    if words[0] in ("yes", "1", "true"):
        return 1
    if words[0] in ("no", "0", "false"):
        return 0
    return None


def auroc(scores: list[float], labels: list[int]) -> float | None:
    """Area under the ROC curve (Mann-Whitney U / (P*N), ties count 1/2); None if one class is absent."""
    pos = sum(1 for l in labels if l == 1)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return None
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        avg = (i + j) / 2 + 1  # ranks are 1-based
        for k in range(i, j + 1):
            ranks[order[k]] = avg
        i = j + 1
    rank_pos = sum(r for r, l in zip(ranks, labels) if l == 1)
    return (rank_pos - pos * (pos + 1) / 2) / (pos * neg)


@BENCHMARKS.register("hateful_memes")
class HatefulMemes(Benchmark):
    """Hateful Memes (or any data in its jsonl format, e.g. the synthetic moderation memes)."""

    name = "hateful_memes"
    id_field = "id"
    scorer_version = SCORER_VERSION
    checker = "yesno"  # vpd.checkers name used when verifying programs on this benchmark
    slice_kinds = ()
    reference = "Hateful Memes challenge (Kiela et al. 2020): AUROC (sklearn roc_auc_score) and accuracy"

    def load(self, path: str | Path) -> list[Item]:
        path = Path(path)
        if path.is_dir():
            for name in ("test.jsonl", "test_seen.jsonl", "dev.jsonl", "dev_seen.jsonl"):
                if (path / name).is_file():
                    path = path / name
                    break
            else:
                raise DataFormatError(f"{path}: no test.jsonl/dev.jsonl (pass the split file itself)")
        if not path.is_file():
            raise DataFormatError(f"no Hateful Memes jsonl at {path}")
        items, seen = [], set()
        with path.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    mid, img, text = rec["id"], rec["img"], rec["text"]
                except (json.JSONDecodeError, KeyError, TypeError) as exc:
                    raise DataFormatError(f"{path}: line {lineno}: bad record ({exc!r})") from None
                label = rec.get("label")
                if label is not None and label not in (0, 1, "0", "1"):
                    raise DataFormatError(f"{path}: line {lineno} (id {mid}): label {label!r} is not 0/1")
                if str(mid) in seen:
                    raise DataFormatError(f"{path}: line {lineno}: duplicate id {mid}")
                seen.add(str(mid))
                items.append(Item(id=str(mid), question=QUESTION, gold=None if label is None else int(label),
                                  image=str(path.parent / img), slices=self.slices_of(rec),
                                  raw={**rec, "__id_value__": mid}))
        return items

    def slices_of(self, rec: dict) -> dict[str, str]:
        return {}

    def extract(self, text: str, item: Item | None = None) -> int | None:
        return extract_label(text)

    def score(self, items: list[Item], predictions: dict[Hashable, Prediction], *,
              strict: bool = False) -> Results:
        if any(it.gold is None for it in items):
            raise DataFormatError("this Hateful Memes file has no labels (the unlabelled test split)")
        matched, missing, extra = self.match(items, predictions, strict=strict)
        per_item = []
        from_text = 0
        for it in items:
            pred = matched.get(it.id)
            if pred is None:
                label, score = 1 - it.gold, float(1 - it.gold)
            else:
                if str(pred.extra.get("label")) in ("0", "1"):
                    label = int(str(pred.extra["label"]))  # the challenge's submission field
                else:
                    from_text += 1
                    label = extract_label(pred.prediction)
                    if label is None and pred.score is not None:
                        label = int(pred.score >= 0.5)
                score = pred.score if pred.score is not None else (float(label) if label is not None else 0.5)
            per_item.append({"id": it.id, "gold": it.gold, "extracted": label, "score": score,
                             "correct": int(label == it.gold), "slices": dict(it.slices)})
        metrics = _metrics(per_item)
        slices: dict[str, dict[str, dict[str, float]]] = {}
        for kind in self.slice_kinds:
            groups: dict[str, list[dict]] = {}
            for r in per_item:
                if kind in r["slices"]:
                    groups.setdefault(r["slices"][kind], []).append(r)
            if groups:
                slices[kind] = {k: _metrics(v) for k, v in sorted(groups.items())}
        return Results(benchmark=self.name, scorer_version=self.scorer_version, metrics=metrics,
                       slices=slices,
                       counts={"n": len(items), "missing": len(missing), "extra": len(extra),
                               "unparsed": sum(1 for r in per_item if r["extracted"] is None),
                               "label_from_text": from_text},
                       missing=tuple(missing), extra=tuple(extra), per_item=tuple(per_item))


def _metrics(rows: list[dict]) -> dict[str, float | None]:
    return {"auroc": auroc([r["score"] for r in rows], [r["gold"] for r in rows]),
            "accuracy": mean(r["correct"] for r in rows), "n": len(rows)}
