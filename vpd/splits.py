"""Which split of a dataset a stage uses.

Convention: an example's split is ``Example.metadata["split"]`` (``train | val | test`` …); a
split of ``None`` or ``"all"`` selects every example; an example without a split field cannot be
placed and is kept by every selection (single-split files such as a benchmark's own evaluation
file carry none).

* Data-making stages (``vpd synth``, ``vpd lskd``, ``vpd mix``) default to :data:`TRAIN_SPLIT`.
* Evaluation (``vpd eval``) defaults to the held-out split: ``test`` when the data has test
  examples, else ``val``, else every example (:func:`eval_split`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable

TRAIN_SPLIT = "train"
ALL_SPLITS = "all"
EVAL_SPLITS = ("test", "val")  # in order of preference


def normalize_split(split: str | None) -> str | None:
    """``None`` for "every split" (``None``, ``""`` or ``"all"``), else the split name."""
    if split is None:
        return None
    split = str(split).strip()
    return None if split in ("", ALL_SPLITS) else split


def example_split(example: Any) -> str | None:
    """The split an :class:`~vpd.types.Example` (or example dict) declares, or None."""
    meta = example.get("metadata", example) if isinstance(example, dict) else getattr(example, "metadata", {})
    value = (meta or {}).get("split")
    return str(value) if value not in (None, "") else None


def in_split(example: Any, split: str | None) -> bool:
    """Whether ``example`` belongs to ``split`` (every example does when ``split`` is None/all, and an
    example without a split belongs to every split)."""
    split = normalize_split(split)
    own = example_split(example)
    return split is None or own is None or own == split


def eval_split(splits: Iterable[str | None]) -> str | None:
    """The evaluation split among the splits present: ``test``, else ``val``, else None (all)."""
    present = {s for s in splits if s}
    return next((s for s in EVAL_SPLITS if s in present), None)


def default_eval_split(data: str | Path) -> str | None:
    """:func:`eval_split` of a dataset folder or ``examples.jsonl`` file (None if it is unreadable
    or declares no split: the benchmark loader reports what is wrong with it)."""
    from vpd.datasets import iter_examples

    try:
        return eval_split(example_split(ex) for ex in iter_examples(data))
    except (OSError, ValueError):
        return None
