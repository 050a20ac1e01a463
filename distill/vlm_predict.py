"""Answer questions with a trained student, in two modes: :class:`Predictor`, :func:`predict_modes`,
:func:`score_modes` and :func:`predict_dataset`.

* ``direct``: the label task prompt (``"{question}\\nAnswer with a single word or phrase."``), the
  decoded text is the answer;
* ``cot`` (rationale-then-answer): the rationale task prompt (``"…\\nExplain the rationale to answer
  the question."``); the answer is parsed from the rationale's last answer sentence
  (:func:`vpd.distill.answer_sentence.parse_final_answer`, "So the answer is X." / "Thus, the answer
  is X"); a rationale without one gives ``None`` (counted as ``unparsed``, scored wrong).

Batches have a fixed size (the last one is padded) so decoding compiles once. Unreadable images are
recorded (``error``; every mode's answer ``None``), never fatal.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterator, Sequence

import numpy as np

from vpd.datasets import read_examples
from vpd.distill.answer_sentence import parse_final_answer
from vpd.distill.vlm_checkpoint import load_student, read_meta
from vpd.distill.vlm_decode import SamplingConfig, generate
from vpd.distill.vlm_model import PaliGemma
from vpd.distill.mixture import label_prefix, rationale_prefix
from vpd.distill.vlm_preprocess import encode_prompts, prefix_ids, preprocess_image
from vpd.distill.vlm_tokenizer import VLMTokenizer
from vpd.types import Example

MODES = ("direct", "cot")
DEFAULT_RATIONALE_TOKENS = 96


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """One line of ``vpd predict``'s output (``cot_prediction``: the answer parsed from ``rationale``)."""

    id: str
    prediction: str | None
    rationale: str | None = None
    cot_prediction: str | None = None
    error: str | None = None

    def to_dict(self) -> dict:
        d = {"id": self.id, "prediction": self.prediction}
        if self.rationale is not None:
            d["rationale"] = self.rationale
            d["cot_prediction"] = self.cot_prediction
        if self.error is not None:
            d["error"] = self.error
        return d


@dataclass(frozen=True, kw_only=True)
class ModePrediction:
    """A student's answers to one question in each mode asked (``None``: mode not run, or no answer)."""

    id: str
    direct: str | None = None
    rationale: str | None = None  # the decoded rationale (cot mode)
    cot: str | None = None  # the answer parsed from ``rationale``; None when it states none
    error: str | None = None  # the image could not be read: no mode answered

    def answer(self, mode: str) -> str | None:
        if mode not in MODES:
            raise ValueError(f"unknown mode {mode!r} (modes: {', '.join(MODES)})")
        return self.direct if mode == "direct" else self.cot

    def to_dict(self) -> dict:
        """The fields that are set (``id`` always)."""
        return {k: v for k, v in asdict(self).items() if v is not None}


class Predictor:
    """Batched greedy decoding of prompts about images with a student model."""

    def __init__(self, model: PaliGemma, tokenizer: VLMTokenizer, *, max_prefix: int = 64, batch: int = 16,
                 max_suffix: int = DEFAULT_RATIONALE_TOKENS) -> None:
        self.model, self.tok, self.max_prefix, self.batch = model, tokenizer, max_prefix, batch
        self.max_suffix = max_suffix  # the trained target length: the rationale budget

    @classmethod
    def load(cls, folder: str | Path, batch: int = 16) -> "Predictor":
        model, tok, meta = load_student(folder)
        return cls(model, tok, max_prefix=int(meta.get("max_prefix", 64)), batch=batch,
                   max_suffix=int(meta.get("max_suffix", DEFAULT_RATIONALE_TOKENS)))

    def fit_prompts(self, prompts: Sequence[str]) -> None:
        """Grow ``max_prefix`` (to a multiple of 8) so that no prompt is cut; one static length per run."""
        if prompts:
            longest = max(len(prefix_ids(self.tok, p)) for p in prompts)
            self.max_prefix = max(self.max_prefix, -(-longest // 8) * 8)

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
    return int(read_meta(ckpt).get("max_suffix", DEFAULT_RATIONALE_TOKENS))


def _batches(examples: Sequence[Example], size: int) -> Iterator[list[Example]]:
    for i in range(0, len(examples), size):
        yield list(examples[i:i + size])


def _check_modes(modes: Sequence[str]) -> tuple[str, ...]:
    bad = [m for m in modes if m not in MODES]
    if bad or not modes:
        raise ValueError(f"modes must be a non-empty subset of {MODES}, got {tuple(modes)}")
    return tuple(dict.fromkeys(modes))


def _predict_chunk(predictor: Predictor, chunk: list[Example], modes: tuple[str, ...], max_answer_tokens: int,
                   max_rationale_tokens: int) -> list[ModePrediction]:
    """One batch: image errors recorded, then one decoding pass per mode (in the examples' order)."""
    size = predictor.model.config.vision.image_size
    errors: dict[str, str] = {}
    good, pixels = [], []
    for ex in chunk:
        try:
            pixels.append(preprocess_image(ex.image, size))
            good.append(ex)
        except (ValueError, OSError) as exc:
            errors[ex.id] = str(exc)
    direct: list[str | None] = [None] * len(good)
    rats: list[str | None] = [None] * len(good)
    if good:
        px = np.stack(pixels)
        if "direct" in modes:
            direct = list(predictor.generate(px, [label_prefix(e) for e in good], max_answer_tokens))
        if "cot" in modes:
            rats = list(predictor.generate(px, [rationale_prefix(e) for e in good], max_rationale_tokens))
    done = {ex.id: ModePrediction(id=ex.id, direct=d, rationale=r, cot=parse_final_answer(r))
            for ex, d, r in zip(good, direct, rats)}
    return [done.get(ex.id) or ModePrediction(id=ex.id, error=errors[ex.id]) for ex in chunk]


def predict_modes(student: Predictor | str | Path, examples: Sequence[Example], *, modes: Sequence[str] = MODES,
                  batch: int = 16, max_answer_tokens: int = 16, max_rationale_tokens: int | None = None,
                  on_batch: Callable[[list[ModePrediction]], None] | None = None) -> list[ModePrediction]:
    """Each example answered in each of ``modes`` (``direct``: label prompt; ``cot``: rationale prompt,
    answer parsed from its last sentence). One :class:`ModePrediction` per example, in order.

    ``student`` is a :class:`Predictor` or a checkpoint folder. ``max_rationale_tokens`` defaults to
    the checkpoint's trained ``max_suffix``. ``on_batch`` sees each batch's predictions (progress,
    streaming to a file). Score them with :func:`score_modes`.
    """
    modes = _check_modes(modes)
    predictor = student if isinstance(student, Predictor) else Predictor.load(student, batch=batch)
    predictor.fit_prompts([f(e) for e in examples for f, m in ((label_prefix, "direct"), (rationale_prefix, "cot"))
                           if m in modes])
    n_rat = max_rationale_tokens or predictor.max_suffix
    out: list[ModePrediction] = []
    for chunk in _batches(examples, predictor.batch):
        preds = _predict_chunk(predictor, chunk, modes, max_answer_tokens, n_rat)
        out.extend(preds)
        if on_batch is not None:
            on_batch(preds)
    return out


@dataclass(frozen=True, kw_only=True)
class ModeScore:
    """One mode's score over the labelled examples (fractions in [0, 1]; ``by_type``: type -> [correct, n]).

    ``unparsed``: answers that are None although the image was read (cot: a rationale with no answer
    sentence); ``errors``: unreadable images. Both are scored wrong and included in ``scored``.
    """

    mode: str
    scored: int
    correct: int
    strict: int
    unparsed: int
    errors: int
    by_type: dict[str, tuple[int, int]] = field(default_factory=dict)

    @property
    def accuracy(self) -> float:
        return self.correct / self.scored if self.scored else 0.0

    @property
    def strict_accuracy(self) -> float:
        return self.strict / self.scored if self.scored else 0.0

    def to_dict(self) -> dict:
        return {**asdict(self), "accuracy": round(self.accuracy, 4), "strict_accuracy": round(self.strict_accuracy, 4)}


def score_modes(examples: Sequence[Example], predictions: Sequence[ModePrediction], *,
                modes: Sequence[str] = MODES, benchmark: str | None = None,
                type_key: str = "qtype") -> dict[str, ModeScore]:
    """Score each mode's answers with the benchmark checker (:func:`vpd.checkers.checker_for`).

    ``benchmark`` names a checker or benchmark (``"shapes"``), else each example's checker is
    inferred. Examples without a label are skipped; a labelled example without a prediction counts
    as an error. ``by_type`` groups by ``example.metadata[type_key]`` (``"?"`` when absent).
    """
    from vpd.checkers import checker_for

    modes = _check_modes(modes)
    by_id = {p.id: p for p in predictions}
    scores: dict[str, ModeScore] = {}
    for mode in modes:
        scored = correct = strict = unparsed = errors = 0
        by_type: dict[str, list[int]] = {}
        for ex in examples:
            if ex.answer is None:
                continue
            scored += 1
            row = by_type.setdefault(str(ex.metadata.get(type_key, "?")), [0, 0])
            row[1] += 1
            pred = by_id.get(ex.id)
            if pred is None or pred.error is not None:
                errors += 1
                continue
            answer = pred.answer(mode)
            if answer is None:
                unparsed += 1
                continue
            verdict = checker_for(ex, benchmark).check(answer, ex)
            correct += verdict.lenient
            strict += verdict.strict
            row[0] += verdict.lenient
        scores[mode] = ModeScore(mode=mode, scored=scored, correct=correct, strict=strict, unparsed=unparsed,
                                 errors=errors, by_type={k: (v[0], v[1]) for k, v in sorted(by_type.items())})
    return scores


def predict_dataset(ckpt: str | Path, data: str | Path, out: str | Path, *, rationale: bool = False,
                    split: str | None = None, batch: int = 16, max_answer_tokens: int = 16,
                    max_rationale_tokens: int | None = None, limit: int | None = None, progress: bool = True) -> dict:
    """Write predictions JSONL for the dataset folder ``data``; returns counts.

    Each line: ``id``, ``prediction`` (direct answer); with ``rationale`` also ``rationale`` and
    ``cot_prediction`` (the answer parsed from it); ``error`` for an unreadable image.
    Counts: ``examples``, ``errors`` (unreadable images), ``bad_lines``, ``out``, and for the
    labelled examples ``scored`` with ``accuracy`` / ``strict_accuracy`` (fractions, each example
    checked by its inferred checker, :func:`vpd.checkers.checker_for`; an image error counts wrong);
    with ``rationale`` also ``cot_accuracy`` / ``cot_strict_accuracy`` / ``cot_unparsed``.
    """
    predictor = Predictor.load(ckpt, batch=batch)
    examples, bad = read_examples(data)
    if split:
        examples = [e for e in examples if str(e.metadata.get("split", "")) == split]
    examples = examples[:limit] if limit else examples
    modes = ("direct", "cot") if rationale else ("direct",)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from rich.progress import Progress

    with out.open("w", encoding="utf-8") as fh, Progress(disable=not progress) as bar:
        task = bar.add_task("predict", total=len(examples))

        def write(preds: list[ModePrediction]) -> None:
            for p in preds:
                line = Prediction(id=p.id, prediction=p.direct, rationale=p.rationale, cot_prediction=p.cot,
                                  error=p.error)
                fh.write(json.dumps(line.to_dict()) + "\n")
            bar.advance(task, len(preds))

        preds = predict_modes(predictor, examples, modes=modes, max_answer_tokens=max_answer_tokens,
                              max_rationale_tokens=max_rationale_tokens, on_batch=write)
    scores = score_modes(examples, preds, modes=modes)
    direct = scores["direct"]
    counts: dict = {"examples": len(examples), "errors": sum(p.error is not None for p in preds),
                    "bad_lines": len(bad), "out": str(out), "scored": direct.scored}
    if direct.scored:
        counts.update(accuracy=round(direct.accuracy, 4), strict_accuracy=round(direct.strict_accuracy, 4))
        if "cot" in scores:
            cot = scores["cot"]
            counts.update(cot_accuracy=round(cot.accuracy, 4), cot_strict_accuracy=round(cot.strict_accuracy, 4),
                          cot_unparsed=cot.unparsed)
    return counts
