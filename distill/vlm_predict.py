"""Answer questions with a trained student: :class:`Predictor` and :func:`predict_dataset`.

The answer comes from the label task prompt (``"{question}\\nAnswer with a single word or
phrase."``); with ``rationale=True`` a second pass with the rationale task prompt fills
``rationale``. Batches have a fixed size (the last one is padded) so decoding compiles once.
Unreadable images are recorded in the output line (``prediction: null, error``), never fatal.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Sequence

import numpy as np

from vpd.datasets import read_examples
from vpd.distill.vlm_checkpoint import load_student, read_meta
from vpd.distill.vlm_decode import SamplingConfig, generate
from vpd.distill.vlm_model import PaliGemma
from vpd.distill.mixture import label_prefix, rationale_prefix
from vpd.distill.vlm_preprocess import encode_prompts, prefix_ids, preprocess_image
from vpd.distill.vlm_tokenizer import VLMTokenizer
from vpd.types import Example


@dataclass(frozen=True, kw_only=True)
class Prediction:
    id: str
    prediction: str | None
    rationale: str | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        d = {"id": self.id, "prediction": self.prediction}
        if self.rationale is not None:
            d["rationale"] = self.rationale
        if self.error is not None:
            d["error"] = self.error
        return d


class Predictor:
    """Batched greedy decoding of prompts about images with a student model."""

    def __init__(self, model: PaliGemma, tokenizer: VLMTokenizer, *, max_prefix: int = 64, batch: int = 16) -> None:
        self.model, self.tok, self.max_prefix, self.batch = model, tokenizer, max_prefix, batch

    @classmethod
    def load(cls, folder: str | Path, batch: int = 16) -> "Predictor":
        model, tok, meta = load_student(folder)
        return cls(model, tok, max_prefix=int(meta.get("max_prefix", 64)), batch=batch)

    def generate(self, pixels: np.ndarray, prompts: Sequence[str], max_new_tokens: int,
                 sampling: SamplingConfig | None = None) -> list[str]:
        """Texts for ``prompts`` (one per row of ``pixels`` ``[B, S, S, 3]`` in [-1, 1])."""
        out: list[str] = []
        sampling = sampling or SamplingConfig(max_new_tokens=max_new_tokens)
        for i in range(0, len(prompts), self.batch):
            chunk, px = list(prompts[i:i + self.batch]), pixels[i:i + self.batch]
            n = len(chunk)
            if n < self.batch:  # pad to a fixed batch so the decoder compiles once
                chunk += [chunk[-1]] * (self.batch - n)
                px = np.concatenate([px, np.repeat(px[-1:], self.batch - n, axis=0)])
            tokens, valid = encode_prompts(self.tok, chunk, self.max_prefix)
            ids = generate(self.model, px, tokens, valid, sampling)
            out.extend(self.tok.decode(row).strip() for row in ids[:n])
        return out


def load_meta_suffix(ckpt: str | Path) -> int:
    """The suffix length the student was trained with (the natural rationale length budget)."""
    return int(read_meta(ckpt).get("max_suffix", 96))


def _batches(examples: list[Example], size: int) -> Iterator[list[Example]]:
    for i in range(0, len(examples), size):
        yield examples[i:i + size]


def predict_dataset(ckpt: str | Path, data: str | Path, out: str | Path, *, rationale: bool = False,
                    split: str | None = None, batch: int = 16, max_answer_tokens: int = 16,
                    max_rationale_tokens: int | None = None, limit: int | None = None, progress: bool = True) -> dict:
    """Write predictions JSONL for the dataset folder ``data``; returns counts.

    Counts: ``examples``, ``errors`` (unreadable images), ``bad_lines``, ``out``, and for the
    labelled examples ``scored`` with ``accuracy`` / ``strict_accuracy`` (fractions, each example
    checked by its inferred checker, :func:`vpd.checkers.checker_for`; an image error counts wrong).
    """
    from vpd.checkers import checker_for

    predictor = Predictor.load(ckpt, batch=batch)
    size = predictor.model.config.vision.image_size
    examples, bad = read_examples(data)
    if split:
        examples = [e for e in examples if str(e.metadata.get("split", "")) == split]
    examples = examples[:limit] if limit else examples
    meta_suffix = int(load_meta_suffix(ckpt))
    n_rat = max_rationale_tokens or meta_suffix
    prompts = [f(e) for e in examples for f in ((label_prefix, rationale_prefix) if rationale else (label_prefix,))]
    if prompts:  # one static prompt length for the whole run, long enough for every question
        longest = max(len(prefix_ids(predictor.tok, p)) for p in prompts)
        predictor.max_prefix = max(predictor.max_prefix, -(-longest // 8) * 8)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    errors = 0
    scored = lenient = strict = 0
    from rich.progress import Progress

    with out.open("w", encoding="utf-8") as fh, Progress(disable=not progress) as bar:
        task = bar.add_task("predict", total=len(examples))
        for chunk in _batches(examples, batch):
            good, pixels = [], []
            for ex in chunk:
                try:
                    pixels.append(preprocess_image(ex.image, size))
                    good.append(ex)
                except (ValueError, OSError) as exc:
                    errors += 1
                    fh.write(json.dumps(Prediction(id=ex.id, prediction=None, error=str(exc)).to_dict()) + "\n")
            if good:
                px = np.stack(pixels)
                answers = predictor.generate(px, [label_prefix(e) for e in good], max_answer_tokens)
                rats = (predictor.generate(px, [rationale_prefix(e) for e in good], n_rat)
                        if rationale else [None] * len(good))
                for ex, a, r in zip(good, answers, rats):
                    fh.write(json.dumps(Prediction(id=ex.id, prediction=a, rationale=r).to_dict()) + "\n")
                    if ex.answer is not None:
                        verdict = checker_for(ex).check(a, ex)
                        lenient += verdict.lenient
                        strict += verdict.strict
            scored += sum(ex.answer is not None for ex in chunk)
            bar.advance(task, len(chunk))
    counts: dict = {"examples": len(examples), "errors": errors, "bad_lines": len(bad), "out": str(out),
                    "scored": scored}
    if scored:
        counts.update(accuracy=round(lenient / scored, 4), strict_accuracy=round(strict / scored, 4))
    return counts
