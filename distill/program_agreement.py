"""How often a program is right across every image that asks its question (question-level agreement).

With question-level reuse each distinct program of a question runs on every image asking it, so a
run knows each program's accuracy over that question's images. A program that passes on only a
few of them (e.g. "Are there more cylinders than cubes?" answered by comparing cubes with spheres,
right on 21% of images by luck) yields verified traces whose reasoning is wrong; a program right
on (nearly) every image is trustworthy (docs: OFFLINE.md, "checking a program on only one to three
images lets wrong yes/no programs pass by luck").

:func:`program_accuracy` maps ``(question, choices, program key)`` to :class:`Agreement` (lenient
verdicts, one per image the program ran on); programs are keyed by their AST-normalised source
(:func:`vpd.programs.dedupe.program_key`), so duplicates count once per image.
:func:`agreement_index` also keeps each example's passing candidates, so that
:meth:`AgreementIndex.best` can pick, for one example, the passing program that is right most
often over its question (synth's own choice, e.g. ``--select first``, may be a lucky one while a
program right on every image also passed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from vpd.programs.dedupe import program_key
from vpd.runs import read_candidates
from vpd.types import Candidate, Example

AgreementKey = tuple[str, tuple[str, ...] | None, str]


@dataclass(frozen=True, kw_only=True)
class Agreement:
    """One program's record on one question: images it passed on, out of images it ran on."""

    passed: int
    images: int

    @property
    def accuracy(self) -> float:
        """passed / images (0..1; 0.0 when it ran on no image)."""
        return self.passed / self.images if self.images else 0.0


def agreement_key(example: Example, program: str) -> AgreementKey:
    """The key of ``program`` answering ``example``'s question."""
    return example.question, example.choices, program_key(program)


@dataclass(frozen=True, kw_only=True)
class AgreementIndex:
    """Program agreement over a run plus each example's passing candidates (by example id)."""

    accuracy: dict[AgreementKey, Agreement]
    passing: dict[str, list[Candidate]] = field(default_factory=dict)

    def of(self, example: Example, program: str | None) -> Agreement | None:
        """The agreement of ``program`` on ``example``'s question (None if unknown)."""
        return self.accuracy.get(agreement_key(example, program)) if program else None

    def best(self, example: Example, prefer: Candidate | None = None) -> tuple[Candidate, Agreement] | None:
        """The passing candidate of ``example`` whose program agrees most over the question (ties:
        ``prefer``'s program, then the lowest index), with its agreement; None if none passed."""
        ranked = []
        for cand in self.passing.get(example.id, []):
            agree = self.of(example, cand.program)
            if agree is not None:
                same = prefer is not None and prefer.program == cand.program
                ranked.append((-agree.accuracy, not same, cand.index, cand, agree))
        if not ranked:
            return None
        _, _, _, cand, agree = min(ranked, key=lambda r: r[:3])
        return cand, agree


def agreement_index(run: str | Path) -> AgreementIndex:
    """Each (question, program)'s lenient pass count over the images of ``run`` (committed blocks
    only; a program is counted once per example even if sampled several times), and each
    example's passing candidates."""
    seen: dict[AgreementKey, dict[str, bool]] = {}
    passing: dict[str, list[Candidate]] = {}
    for ex, cand, _ in read_candidates(run):
        if not cand.program or cand.status == "not_run":
            continue
        per_image = seen.setdefault(agreement_key(ex, cand.program), {})
        passed = bool(cand.verdict is not None and cand.verdict.lenient)
        per_image[ex.id] = per_image.get(ex.id, False) or passed
        if passed:
            passing.setdefault(ex.id, []).append(cand)
    accuracy = {key: Agreement(passed=sum(v.values()), images=len(v)) for key, v in seen.items()}
    return AgreementIndex(accuracy=accuracy, passing=passing)


def program_accuracy(run: str | Path) -> dict[AgreementKey, Agreement]:
    """Each (question, program)'s :class:`Agreement` over the images of ``run``."""
    return agreement_index(run).accuracy
