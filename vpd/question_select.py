"""Choosing which distinct questions to send to the program writer, to bound the LLM cost.

With question-level reuse (``vpd synth``'s default) programs are sampled once per distinct
``(question, choices)`` and run on every image asking it, so LLM cost grows with the number of
distinct questions and the data with the number of examples asking them. Picking the most frequent
questions gives the most examples per LLM call.

Rules (:func:`pick_frequent_questions`): distinct questions ranked by frequency (ties by first
appearance), taken round-robin over question types in sorted ``qtype`` order so every type is
represented; the examples of the chosen questions keep their input order, or with
:func:`in_rank_order` are grouped question by question in rank order, so a synth run that stops
early has already sampled the questions worth the most examples.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Sequence

from vpd.types import Example

QuestionKey = tuple[str, tuple[str, ...] | None]


def question_key(ex: Example) -> QuestionKey:
    """The key programs are shared under: the question text and its choices (None if open-ended)."""
    return ex.question, ex.choices


def ranked_questions(examples: Sequence[Example]) -> list[QuestionKey]:
    """Distinct questions, most frequent first, in the round-robin-by-qtype order described above."""
    freq = Counter(question_key(e) for e in examples)
    qtype_of: dict[QuestionKey, str] = {}
    for e in examples:
        qtype_of.setdefault(question_key(e), e.qtype)
    by_type: dict[str, list[QuestionKey]] = {}
    for key, _ in freq.most_common():  # most_common keeps first-appearance order among ties
        by_type.setdefault(qtype_of[key], []).append(key)
    order: list[QuestionKey] = []
    queues = [by_type[t] for t in sorted(by_type)]
    depth = max((len(q) for q in queues), default=0)
    for i in range(depth):
        order.extend(q[i] for q in queues if i < len(q))
    return order


def pick_frequent_questions(examples: Sequence[Example], n_questions: int,
                            max_examples: int | None = None) -> list[Example]:
    """Examples of the ``n_questions`` first questions of :func:`ranked_questions`, in input order,
    cut to at most ``max_examples`` (None = all of them)."""
    keep = set(ranked_questions(examples)[:max(0, n_questions)])
    chosen = [e for e in examples if question_key(e) in keep]
    return chosen if max_examples is None else chosen[:max_examples]


def in_rank_order(examples: Sequence[Example]) -> list[Example]:
    """``examples`` grouped by question in :func:`ranked_questions` order (stable within a question)."""
    rank = {key: i for i, key in enumerate(ranked_questions(examples))}
    return sorted(examples, key=lambda e: rank[question_key(e)])


@dataclass(frozen=True, kw_only=True)
class CoveragePoint:
    """How many examples the first ``questions`` ranked questions cover."""

    questions: int
    examples: int
    share: float  # examples / all examples, 0..1


def coverage(examples: Sequence[Example], points: Sequence[int]) -> list[CoveragePoint]:
    """Examples covered by the first N ranked questions, for each N in ``points`` (clipped to the
    number of distinct questions)."""
    ranked = ranked_questions(examples)
    freq = Counter(question_key(e) for e in examples)
    cumulative = [0]
    for key in ranked:
        cumulative.append(cumulative[-1] + freq[key])
    total = len(examples)
    out = []
    for n in points:
        m = min(max(0, n), len(ranked))
        out.append(CoveragePoint(questions=m, examples=cumulative[m], share=cumulative[m] / total if total else 0.0))
    return out
