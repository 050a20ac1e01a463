"""Choosing among candidates: which passing program to keep, and majority answers without labels.

Selection rules (registry :data:`SELECTORS`), applied to the candidates whose verdict passed
(``Verdict.passed``, i.e. lenient):

* ``first`` — the lowest candidate index;
* ``shortest`` — the fewest non-blank, non-comment source lines, then fewest characters, then index;
* ``majority`` — among passing candidates, one whose (checker-normalised) answer is the most common
  answer over *all* successfully executed candidates (agreement with the crowd), then index;
* ``score`` — the passing candidate the LLM itself scored highest (``Candidate.mean_logprob``, the
  mean token log-probability of its completion, as VPD picks among correct programs); candidates
  without a score (a sampler that gives none) come after every scored one, then index.

Without labels (``vpd synth --no-labels``) :func:`majority_answer` gives the prediction and
:func:`majority_choice` the candidate whose trace stands for it (the lowest index among those
that returned the majority answer) — the program VPD rationalizes for unlabelled data.
"""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

from vpd.registry import Registry
from vpd.types import Candidate

Normalizer = Callable[[Any], str]
Selector = Callable[[list[Candidate], Normalizer], Candidate | None]

SELECTORS: Registry[Selector] = Registry("selection rule")


def _passing(cands: list[Candidate]) -> list[Candidate]:
    return [c for c in cands if c.verdict is not None and c.verdict.passed and c.program]


def program_size(source: str) -> tuple[int, int]:
    """(code lines, characters) of ``source``, ignoring blank lines and comment lines."""
    lines = [ln for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]
    return len(lines), sum(len(ln.strip()) for ln in lines)


@SELECTORS.register("first")
def select_first(cands: list[Candidate], norm: Normalizer) -> Candidate | None:
    ok = _passing(cands)
    return min(ok, key=lambda c: c.index) if ok else None


@SELECTORS.register("shortest")
def select_shortest(cands: list[Candidate], norm: Normalizer) -> Candidate | None:
    ok = _passing(cands)
    return min(ok, key=lambda c: (*program_size(c.program or ""), c.index)) if ok else None


@SELECTORS.register("majority")
def select_majority(cands: list[Candidate], norm: Normalizer) -> Candidate | None:
    ok = _passing(cands)
    if not ok:
        return None
    votes = answer_votes(cands, norm)
    return min(ok, key=lambda c: (-votes.get(norm(c.answer), 0), c.index))


@SELECTORS.register("score")
def select_score(cands: list[Candidate], norm: Normalizer) -> Candidate | None:
    ok = _passing(cands)
    if not ok:
        return None
    return min(ok, key=lambda c: (c.mean_logprob is None, -(c.mean_logprob or 0.0), c.index))


def select(cands: list[Candidate], rule: str, norm: Normalizer = str) -> Candidate | None:
    """The chosen passing candidate under ``rule`` (``first | shortest | majority | score``), or None."""
    return SELECTORS.get(rule)(cands, norm)


def answer_votes(cands: list[Candidate], norm: Normalizer) -> dict[str, int]:
    """normalised answer -> number of candidates that ran to completion with it (empty answers skipped)."""
    counts: Counter[str] = Counter()
    for c in cands:
        if c.status == "ok" and c.answer is not None:
            key = norm(c.answer)
            if key != "":
                counts[key] += 1
    return dict(counts)


def majority_answer(cands: list[Candidate], norm: Normalizer) -> tuple[Any, dict[str, int]]:
    """The most common answer among successful candidates (ties: the earliest candidate's), as
    that candidate's raw answer, plus the vote counts; ``(None, {})`` when none succeeded."""
    votes = answer_votes(cands, norm)
    if not votes:
        return None, {}
    best = max(votes.values())
    for c in sorted(cands, key=lambda c: c.index):
        if c.status == "ok" and c.answer is not None and votes.get(norm(c.answer)) == best:
            return c.answer, votes
    return None, votes


def majority_choice(cands: list[Candidate], norm: Normalizer) -> tuple[Any, dict[str, int], int | None]:
    """:func:`majority_answer` plus the index of the candidate it came from (the lowest index that
    ran to completion with the majority answer and has a program), or None when none succeeded."""
    answer, votes = majority_answer(cands, norm)
    if answer is None:
        return None, votes, None
    key = norm(answer)
    for c in sorted(cands, key=lambda c: c.index):
        if c.status == "ok" and c.answer is not None and c.program and norm(c.answer) == key:
            return answer, votes, c.index
    return answer, votes, None
