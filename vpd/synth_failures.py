"""Failure classes of ``vpd synth`` candidates, which of them are retryable, and when a run stops.

Every candidate that does not pass has one category (``Verdict.category``)::

    llm_error      the LLM gave no completion (server down, timeouts, 429s after retries)  [infrastructure]
    tool_error     a tool *backend* raised (CUDA out of memory, a missing weight, a VLM server down;
                   see vpd.tools.failures) — the program was not at fault             [infrastructure]
    no_code        the completion held no program
    syntax         the program does not parse
    rejected       the sandbox policy refused the program
    program_error  the program raised (its own bug, or a tool refusing its request)
    timeout        the program ran past --timeout
    killed         the worker died (memory / CPU limit, crash)
    image_error    the example's image cannot be read
    wrong_answer   the program ran and answered wrongly

**Infrastructure** failures (:data:`INFRASTRUCTURE`) say nothing about the program or the data:
an example that lost a candidate to one and has no verified program is **retryable** —
``vpd synth --resume`` (or ``--retry-failed``) redoes it, and its new block supersedes the old one
in the run (:mod:`vpd.runs`). :class:`FailureStreak` stops a session after ``N`` consecutive
infrastructure failures of one layer (LLM or tools), and a session in which *every* candidate
failed that way, instead of "finishing" a run that holds nothing.
"""

from __future__ import annotations

from typing import Any, Iterable

#: Categories caused by the LLM endpoint or a tool backend, not by the program: retried on resume.
INFRASTRUCTURE = frozenset({"llm_error", "tool_error"})
#: Older runs called the program's own runtime failures ``runtime_error``.
LEGACY_CATEGORIES = {"runtime_error": "program_error"}
#: Default of ``--max-infra-failures``: consecutive infrastructure failures (candidates) that stop a run.
DEFAULT_MAX_INFRA_FAILURES = 20


class InfrastructureFailureError(RuntimeError):
    """The LLM endpoint or a tool backend kept failing: the session stopped (resumable)."""


def failure_category(status: str, error: str | None) -> str:
    """Execution status and error -> failure category (``none`` for ok)."""
    from vpd.tools.failures import is_backend_failure_text

    if status == "ok":
        return "none"
    if error and error.startswith("SyntaxError"):
        return "syntax"
    if status == "rejected":
        return "syntax" if error and "SyntaxError" in error else "rejected"
    if status == "timeout":
        return "timeout"
    if status == "killed":
        return "killed"
    if error and ("ImageLoadError" in error or "cannot identify image" in error):
        return "image_error"
    if is_backend_failure_text(error):
        return "tool_error"
    return "program_error"


def backend_failure(trace: Any) -> str | None:
    """The error of the first tool call in ``trace`` that failed in its backend, or None (also
    when the program caught it: its answer then rests on a tool that did not answer)."""
    from vpd.tools.failures import is_backend_failure_text

    for call in getattr(trace, "calls", ()) or ():
        err = getattr(call, "error", None)
        if is_backend_failure_text(err):
            return str(err)
    return None


def is_retryable(categories: Iterable[str], *, selected: bool, labels: bool) -> bool:
    """An example is redone on resume when an infrastructure failure cost it a candidate and it has
    no verified program (without labels: any such failure, since it changes the majority vote)."""
    hit = any(c in INFRASTRUCTURE for c in categories)
    return hit and (not labels or not selected)


class FailureStreak:
    """Counts consecutive infrastructure failures per layer over a session's candidates, in the
    order they are committed.

    A candidate that got a completion ends the LLM streak; one that ran in the sandbox without a
    backend failure ends the tool streak. :meth:`add` raises :class:`InfrastructureFailureError`
    once either streak reaches ``limit`` (0 = never); :meth:`finish` raises when every candidate of
    the session failed for infrastructure reasons (an outage from the first request on)."""

    def __init__(self, limit: int) -> None:
        self.limit = max(0, int(limit))
        self.streak = {"llm_error": 0, "tool_error": 0}
        self.total = 0
        self.infra = 0

    def add(self, candidates: Iterable[Any]) -> None:
        for cand in candidates:
            category = cand.verdict.category if cand.verdict is not None else "none"
            self.total += 1
            self.infra += category in INFRASTRUCTURE
            if category == "llm_error":
                self.streak["llm_error"] += 1
            elif category == "tool_error":
                self.streak["llm_error"] = 0
                self.streak["tool_error"] += 1
            else:
                self.streak["llm_error"] = 0
                if cand.status != "not_run":
                    self.streak["tool_error"] = 0
        worst = max(self.streak, key=lambda c: self.streak[c])
        if self.limit and self.streak[worst] >= self.limit:
            raise InfrastructureFailureError(self._message(f"{self.streak[worst]} consecutive candidates failed "
                                                           f"with {worst}", worst))

    def finish(self) -> None:
        if self.total and self.infra == self.total:
            raise InfrastructureFailureError(self._message(
                f"every candidate of this session ({self.total}) failed for infrastructure reasons",
                max(self.streak, key=lambda c: self.streak[c])))

    @staticmethod
    def _message(what: str, category: str) -> str:
        layer = "the LLM endpoint (--llm)" if category == "llm_error" else "a tool backend (--tools)"
        return (f"stopped: {what}; {layer} is failing. Nothing is lost: fix it and rerun the same command with "
                "--resume (an endpoint's address or options may change) — the examples that failed this way "
                "are redone.")
