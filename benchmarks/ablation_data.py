"""Training sets of the ablation's arms, cut from one ``vpd mix`` mixture.

For a labelled-question **budget** ``B`` and a **seed**, :func:`sample_budget` draws ``B`` example
ids from the mixture's ``label`` lines (seeded: each seed is a different labelled subset, so the
seeds' spread covers data variance too). The arms then train on:

* ``label``  — the ``label`` lines of those examples;
* ``vpd``    — the same label lines + the ``rationale`` lines of those examples (the ones whose
  program verified);
* ``vpd-long`` — the ``vpd`` lines, trained for more steps (:func:`equal_exposure_steps`) so that each
  label line is seen as often as in ``label``: the control for rationales diluting the labels;
* ``vpd+lskd`` — ``vpd`` + every ``lskd`` line (LSKD needs no labels);
* ``blind``  — the ``label`` arm with every image replaced by one constant grey image (the
  question-only control); it is evaluated on the same constant image.

With a pretraining **replay** (:func:`replay_lines`), every trained arm also gets the same ``N``
records of the base's own pretraining mixture (``BASE/pretrain_data/train.jsonl``: captions,
detection, boxes, descriptions of train scenes), as PaLI-style fine-tuning keeps generic tasks in
the mix so that a small labelled set does not erase what pretraining taught; the blind arm's replay
records get the constant image too.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

import numpy as np

ARMS_TRAINED = ("label", "vpd", "vpd-long", "vpd+lskd", "blind")
BLIND_GREY = 128  # the constant image's value (uint8, every channel)


def read_lines(mixture: str | Path) -> list[dict]:
    """The records of ``mixture/train.jsonl`` (or of the file itself)."""
    path = Path(mixture)
    file = path / "train.jsonl" if path.is_dir() else path
    return [json.loads(x) for x in file.read_text(encoding="utf-8").splitlines() if x.strip()]


def sample_budget(lines: Sequence[dict], budget: int, seed: int) -> list[str]:
    """``budget`` distinct example ids with a ``label`` line, drawn with ``seed`` (sorted ids first, so
    the draw does not depend on the file's order)."""
    ids = sorted({r["example_id"] for r in lines if r.get("task") == "label"})
    if budget > len(ids):
        raise ValueError(f"budget {budget} is more than the mixture's {len(ids)} labelled examples")
    rng = np.random.default_rng([seed, budget])
    return sorted(rng.choice(ids, size=budget, replace=False).tolist())


def held_out_examples(test: str | Path, split: str | None, limit: int | None) -> list:
    """The labelled examples of a dataset folder (of ``split`` when given), the first ``limit`` of them."""
    from vpd.datasets import read_examples

    examples = [e for e in read_examples(test)[0] if e.answer is not None
                and (not split or str(e.metadata.get("split", "")) == split)]
    return examples[:limit] if limit else examples


def blind_image(folder: str | Path, size: tuple[int, int] = (320, 240)) -> Path:
    """A constant grey PNG (written once) standing in for every image of the blind arm."""
    from PIL import Image

    path = Path(folder) / "blind.png"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", size, (BLIND_GREY,) * 3).save(path)
    return path


def arm_lines(lines: Sequence[dict], arm: str, ids: Sequence[str], *, blind: Path | None = None) -> list[dict]:
    """The training lines of ``arm`` for the labelled examples ``ids``."""
    chosen = set(ids)
    label = [r for r in lines if r.get("task") == "label" and r["example_id"] in chosen]
    if arm == "label":
        return label
    if arm == "blind":
        if blind is None:
            raise ValueError("the blind arm needs the constant image")
        return [dict(r, image=str(blind)) for r in label]
    rationale = [r for r in lines if r.get("task") == "rationale" and r["example_id"] in chosen]
    if arm in ("vpd", "vpd-long"):
        return label + rationale
    if arm == "vpd+lskd":
        return label + rationale + [r for r in lines if r.get("task") == "lskd"]
    raise ValueError(f"unknown arm {arm!r} (one of {', '.join(ARMS_TRAINED)})")


def equal_exposure_steps(steps: int, arm_lines_n: int, label_lines_n: int) -> int:
    """Steps that give an arm of ``arm_lines_n`` training lines the same passes over its data as
    ``steps`` give the label arm's ``label_lines_n`` lines (both counts include any replay), at the
    same batch: ``round(steps * arm_lines_n / label_lines_n)``, never fewer than ``steps``."""
    if label_lines_n <= 0:
        raise ValueError("the label arm has no training lines")
    return max(steps, round(steps * arm_lines_n / label_lines_n))


def write_lines(folder: str | Path, lines: Sequence[dict]) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines), encoding="utf-8")
    return folder


def replay_lines(base: str | Path, n: int, seed: int) -> list[dict]:
    """``n`` records of the base's pretraining mixture, drawn with ``seed`` (empty for ``n <= 0``)."""
    if n <= 0:
        return []
    file = Path(base) / "pretrain_data" / "train.jsonl"
    if not file.is_file():
        raise FileNotFoundError(f"{file} is missing: replay needs a base made by `vpd pretrain`")
    records = read_lines(file)
    rng = np.random.default_rng([seed, n, 7])
    pick = rng.choice(len(records), size=min(n, len(records)), replace=False)
    return [records[int(i)] for i in sorted(pick)]
