"""Static token lengths chosen from the data: :func:`choose_lengths` -> :class:`LengthChoice`.

Training pads every example to ``max_prefix + max_suffix`` tokens. Prompts are short and cutting
one loses the question, so ``max_prefix`` covers every prompt by default (``prefix_coverage=1``).
Targets have a long tail (a rationale listing many boxes), so ``max_suffix`` covers a fraction
``coverage`` of them (default 99%) and never less than the longest answer sentence: the rare longer
target is shortened by :mod:`vpd.distill.target_shorten` without losing its answer. Both are
rounded up to a multiple of ``multiple`` (8) and capped (a cap may force shorter; then the choice
reports the answers that would be cut).

Lengths are in tokens: a prompt counts ``<bos>`` + prompt + ``"\\n"``; a target counts its tokens +
``<eos>``; an answer sentence (:func:`vpd.distill.answer_sentence.split_answer_sentence`) + ``<eos>``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Mapping, Sequence

import numpy as np

from vpd.distill.answer_sentence import split_answer_sentence
from vpd.distill.target_shorten import ShorteningCounts
from vpd.distill.vlm_preprocess import suffix_ids
from vpd.distill.vlm_tokenizer import VLMTokenizer


@dataclass(frozen=True, kw_only=True)
class LengthStats:
    """Token-length distribution of one kind of text (``n`` texts; percentiles are exact order statistics)."""

    n: int
    mean: float
    p50: int
    p90: int
    p99: int
    max: int

    @classmethod
    def of(cls, lengths: Sequence[int]) -> "LengthStats":
        if not len(lengths):
            return cls(n=0, mean=0.0, p50=0, p90=0, p99=0, max=0)
        a = np.sort(np.asarray(lengths))
        return cls(n=len(a), mean=round(float(a.mean()), 2), p50=covering(a, 0.5), p90=covering(a, 0.9),
                   p99=covering(a, 0.99), max=int(a[-1]))


@dataclass(frozen=True, kw_only=True)
class LengthChoice:
    """The chosen static lengths (tokens), the statistics they came from, and their consequences.

    ``targets_over`` targets are longer than ``max_suffix`` and will be shortened as
    ``shortening`` says (a dry run of the encoder on exactly those targets); ``answers_over`` is the
    number whose answer sentence alone does not fit (0 unless ``cap_suffix`` forced it).
    """

    max_prefix: int
    max_suffix: int
    coverage: float
    prefix_coverage: float
    prefix: LengthStats
    suffix: LengthStats
    answer: LengthStats
    suffix_by_task: dict[str, LengthStats] = field(default_factory=dict)
    prefixes_over: int = 0
    targets_over: int = 0
    answers_over: int = 0
    capped_prefix: bool = False
    capped_suffix: bool = False
    shortening: ShorteningCounts = field(default_factory=ShorteningCounts)

    def summary(self) -> str:
        """One line for a log: the choice, the data's lengths, and what the choice costs."""
        cap = " (capped)" if self.capped_suffix else ""
        return (f"max_prefix {self.max_prefix} (longest prompt {self.prefix.max}), max_suffix {self.max_suffix}{cap} "
                f"(targets p50 {self.suffix.p50}, p99 {self.suffix.p99}, max {self.suffix.max}; longest answer "
                f"sentence {self.answer.max}); {self.shortening.line()}")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def covering(sorted_lengths: np.ndarray, fraction: float) -> int:
    """The smallest length that at least ``fraction`` of the (ascending) lengths do not exceed."""
    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"coverage fraction must be in (0, 1], got {fraction}")
    k = max(1, math.ceil(fraction * len(sorted_lengths) - 1e-9))
    return int(sorted_lengths[k - 1])


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


def _lengths(tok: VLMTokenizer, texts: list[str]) -> list[int]:
    if not texts:
        return []
    return [len(e.ids) for e in tok.tokenizer.encode_batch(texts, add_special_tokens=False)]


def choose_lengths(tok: VLMTokenizer, records: Sequence[Mapping[str, Any]], *, cap_prefix: int, cap_suffix: int,
                   coverage: float = 0.99, prefix_coverage: float = 1.0, multiple: int = 8) -> LengthChoice:
    """``max_prefix``/``max_suffix`` for mixture ``records`` (dicts with ``prefix``, ``suffix``, ``task``).

    ``max_suffix`` = max(the ``coverage`` quantile of target lengths, the longest answer sentence),
    rounded up to ``multiple``, at most ``cap_suffix``; ``max_prefix`` likewise from prompt lengths
    with ``prefix_coverage``. Raises ValueError on no records or caps below 2.
    """
    if not records:
        raise ValueError("choose_lengths: no records")
    if cap_prefix < 2 or cap_suffix < 2:
        raise ValueError(f"caps must be >= 2 tokens, got cap_prefix={cap_prefix}, cap_suffix={cap_suffix}")
    prefixes = [str(r["prefix"]) + "\n" for r in records]
    suffixes = [str(r["suffix"]) for r in records]
    p_len = [n + 1 for n in _lengths(tok, prefixes)]  # + <bos>
    s_len = [n + 1 for n in _lengths(tok, suffixes)]  # + <eos>
    a_len = [n + 1 for n in _lengths(tok, [split_answer_sentence(s)[1] for s in suffixes])]
    want_p = _round_up(covering(np.sort(p_len), prefix_coverage), multiple)
    want_s = _round_up(max(covering(np.sort(s_len), coverage), max(a_len)), multiple)
    max_prefix, max_suffix = min(want_p, cap_prefix), min(want_s, cap_suffix)
    over = [i for i, n in enumerate(s_len) if n > max_suffix]
    shortening = ShorteningCounts.of([suffix_ids(tok, suffixes[i], max_suffix)[1] for i in over],
                                     prefixes_cut=sum(n > max_prefix for n in p_len))
    shortening = ShorteningCounts(**{**shortening.to_dict(), "targets": len(records)})
    by_task: dict[str, list[int]] = {}
    for r, n in zip(records, s_len):
        by_task.setdefault(str(r.get("task", "")), []).append(n)
    return LengthChoice(
        max_prefix=max_prefix, max_suffix=max_suffix, coverage=coverage, prefix_coverage=prefix_coverage,
        prefix=LengthStats.of(p_len), suffix=LengthStats.of(s_len), answer=LengthStats.of(a_len),
        suffix_by_task={t: LengthStats.of(v) for t, v in sorted(by_task.items())},
        prefixes_over=shortening.prefixes_cut, targets_over=len(over),
        answers_over=sum(n > max_suffix for n in a_len), capped_prefix=want_p > cap_prefix,
        capped_suffix=want_s > cap_suffix, shortening=shortening)
