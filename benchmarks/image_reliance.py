"""Does a student look at the image? The likelihood of the labelled answer with the right image, with
another scene's image and with one grey image, per question type.

    python -m vpd.benchmarks.image_reliance --student CKPT --test D --split val --limit 600 [--out F.json]

For each held-out example the student scores ``-log p(answer <eos> | image, label prompt)`` in nats
(teacher-forced, the answer as the label is written) three times:

* ``right``   — its own image;
* ``swapped`` — the image of another example (the distinct images rolled by one place, so every
  example gets a different scene; the *perceptual score* of Gat et al., 2021, by likelihood);
* ``grey``    — the blind arm's constant grey image.

``swapped − right`` (nats, mean with a 95% normal interval over examples) is how much the answer
depends on *this* image: 0 means the student answers from the question alone, whatever it scores.
``grey − right`` also counts what any real image gives over none (an image-shaped prior). Both are
reported per question type and overall; an accuracy and its blind control say how well a student
answers, this says whether its answers use the pixels at all.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

MODES = ("right", "swapped", "grey")


@dataclass(frozen=True, kw_only=True)
class Reliance:
    """Mean answer NLL (nats) per image condition for one question type (``"all"``: every example).

    ``swapped_gain`` / ``grey_gain``: mean paired increase over ``right`` with its 95% half-width."""

    qtype: str
    n: int
    right: float
    swapped: float
    grey: float
    swapped_gain: float
    swapped_half_width: float
    grey_gain: float
    grey_half_width: float


def _paired(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    d = b - a
    half = 1.96 * float(d.std(ddof=1)) / math.sqrt(len(d)) if len(d) > 1 else float("nan")
    return float(d.mean()), half


def summarise(qtypes: Sequence[str], nll: dict[str, np.ndarray]) -> list[Reliance]:
    """Per-type and overall :class:`Reliance` rows from per-example NLLs of the three conditions."""
    qtypes = np.asarray(list(qtypes))
    rows = []
    for name in [*sorted(set(qtypes.tolist())), "all"]:
        k = np.ones(len(qtypes), bool) if name == "all" else qtypes == name
        right, swapped, grey = (nll[m][k] for m in MODES)
        sg, sh = _paired(right, swapped)
        gg, gh = _paired(right, grey)
        rows.append(Reliance(qtype=name, n=int(k.sum()), right=float(right.mean()), swapped=float(swapped.mean()),
                             grey=float(grey.mean()), swapped_gain=sg, swapped_half_width=sh, grey_gain=gg,
                             grey_half_width=gh))
    return rows


def answer_nll(model, data, image_rows: np.ndarray, batch: int = 64) -> np.ndarray:
    """``-log p(target | image, prompt)`` (nats, summed over the target tokens) of every tokenized
    example of ``data`` (:class:`vpd.distill.vlm_train.MixtureData`), example ``i`` shown image
    ``image_rows[i]`` of ``data.images``; the batch is padded to one static shape."""
    import jax
    import jax.numpy as jnp
    import optax

    from vpd.distill.vlm_preprocess import normalize

    @jax.jit
    def nll_of(pixels, tokens, valid, suffix):
        h = model.hidden(pixels, tokens, valid, suffix)[:, :-1]
        mask = (suffix & valid)[:, 1:].astype(jnp.float32)
        nll = optax.softmax_cross_entropy_with_integer_labels(model.logits(h).astype(jnp.float32), tokens[:, 1:])
        return (nll * mask).sum(-1)

    out = []
    for start in range(0, len(data), batch):
        rows = np.arange(start, min(len(data), start + batch))
        pad = np.concatenate([rows, np.repeat(rows[-1:], batch - len(rows))])
        px = normalize(data.images[image_rows[pad]])
        out.append(np.asarray(nll_of(px, data.tokens[pad], data.valid[pad], data.suffix[pad]))[:len(rows)])
    return np.concatenate(out)


def image_reliance(student: str | Path, examples: Sequence, *, batch: int = 64) -> list[Reliance]:
    """The three conditions for ``examples`` (labelled :class:`vpd.types.Example`) under ``student``."""
    from vpd.benchmarks.ablation_data import BLIND_GREY
    from vpd.distill.mixture import label_prefix
    from vpd.distill.vlm_checkpoint import load_student
    from vpd.distill.vlm_train import tokenize_mixture

    model, tok, meta = load_student(student)
    records = [{"id": e.id, "image": e.image, "prefix": label_prefix(e), "suffix": str(e.answer), "task": e.qtype}
               for e in examples if e.answer is not None]
    longest_prompt = max(len(tok.encode(r["prefix"])) + 2 for r in records)
    longest_answer = max(len(tok.encode(r["suffix"])) + 1 for r in records)
    data = tokenize_mixture(records, tok, model.config.vision.image_size, max(longest_prompt, 8), longest_answer)
    if len(data.images) < 2:
        raise ValueError("need examples on at least two distinct images to swap them")
    grey = np.full((1, *data.images.shape[1:]), BLIND_GREY, np.uint8)
    images = np.concatenate([data.images, grey])
    data = dataclasses.replace(data, images=images)
    n_real = len(images) - 1
    rows = {"right": data.image_index, "swapped": (data.image_index + 1) % n_real,
            "grey": np.full(len(data), n_real)}
    nll = {mode: answer_nll(model, data, rows[mode], batch) for mode in MODES}
    return summarise(data.tasks, nll)


def markdown(rows: Sequence[Reliance], command: str) -> str:
    lines = [f"Command: `{command}`", "",
             "Answer NLL in nats (lower is better); gains are paired means with 95% intervals over examples.", "",
             "| question type | n | right image | swapped image | grey image | swapped − right | grey − right |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r.qtype} | {r.n} | {r.right:.3f} | {r.swapped:.3f} | {r.grey:.3f} | "
                     f"{r.swapped_gain:+.3f} ± {r.swapped_half_width:.3f} | {r.grey_gain:+.3f} ± {r.grey_half_width:.3f} |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    import sys

    from vpd.benchmarks.ablation_data import held_out_examples

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--student", required=True, help="a student checkpoint folder (vpd train / vpd pretrain)")
    ap.add_argument("--test", required=True, help="held-out dataset folder (examples.jsonl)")
    ap.add_argument("--split", default="val", help="only examples of this split ('' = all)")
    ap.add_argument("--limit", type=int, default=600, help="first N labelled examples")
    ap.add_argument("--batch", type=int, default=64)
    ap.add_argument("--out", help="write the rows as JSON here (and a .md beside it)")
    args = ap.parse_args(argv)
    examples = held_out_examples(Path(args.test), args.split or None, args.limit)
    if not examples:
        print(f"no labelled examples in {args.test} (split {args.split!r})", file=sys.stderr)
        return 2
    rows = image_reliance(args.student, examples, batch=args.batch)
    text = markdown(rows, "python -m vpd.benchmarks.image_reliance " + " ".join(argv if argv is not None
                                                                                 else sys.argv[1:]))
    print(text)
    if args.out:
        out = Path(args.out)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps([asdict(r) for r in rows], indent=2) + "\n")
        out.with_suffix(".md").write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
