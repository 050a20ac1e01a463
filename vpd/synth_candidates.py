"""One example's candidates in ``vpd synth``: each sampled program's execution result turned into a
:class:`~vpd.types.Candidate` with its verdict (the failure categories of :mod:`vpd.synth_failures`;
checked against the label only with labels), plus the checker and image checks they use."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from vpd.checkers import BaseChecker, JudgedChecker, checker_for
from vpd.images import ImageLoadError, load_image
from vpd.synth_failures import backend_failure, failure_category
from vpd.synth_writer import Sample
from vpd.types import Candidate, Example, Trace, Verdict

if TYPE_CHECKING:
    from vpd.synth_config import SynthConfig


def example_checker(ex: Example, cfg: "SynthConfig", judge_gen: Any) -> Any:
    """The example's checker (``cfg.checker`` or inferred), wrapped in the LLM judge when there is one."""
    base: BaseChecker = checker_for(ex, cfg.checker)
    return JudgedChecker(base, judge_gen) if judge_gen is not None else base


def image_load_error(path: str) -> str | None:
    """Why the image at ``path`` cannot be read, or None."""
    try:
        load_image(path)
    except ImageLoadError as exc:
        return f"ImageLoadError: {exc}"
    return None


def build_candidates(ex: Example, row: list[Sample], dup_of: list[int | None], slots: dict[int, int],
                     results: list[Any], image_error: str | None, checker: Any, cfg: "SynthConfig",
                     sample_s: float) -> tuple[list[Candidate], list[dict[str, Any]]]:
    """The candidates of ``ex`` (one per sample in ``row``; a duplicate program reuses the result of the
    first copy, ``dup_of``) and per-candidate extra keys for the run file."""
    cands: list[Candidate] = []
    extra: list[dict[str, Any]] = []
    for i, s in enumerate(row):
        base = dict(example_id=ex.id, index=i, program=s.program, raw_completion=s.raw,
                    mean_logprob=getattr(s, "mean_logprob", None))
        timings = {"sample_s": round(sample_s / max(1, len(row)), 4)}
        if s.program is None:
            cands.append(Candidate(**base, status="not_run", error=s.error,
                                   verdict=Verdict(strict=False, lenient=False, checker=checker.name,
                                                   category=s.category, detail=s.error or ""),
                                   timings=timings))
            extra.append({})
            continue
        if image_error is not None:
            cands.append(Candidate(**base, status="error", error=image_error,
                                   verdict=Verdict(strict=False, lenient=False, checker=checker.name,
                                                   category="image_error", detail=image_error), timings=timings))
            extra.append({})
            continue
        src = i if dup_of[i] is None else dup_of[i]
        res = results[slots[src]]
        status = str(getattr(res, "status", "error"))
        error = getattr(res, "error", None)
        answer = getattr(res, "answer", None)
        trace = getattr(res, "trace", None) or Trace()
        if not isinstance(trace, Trace):
            trace = Trace.from_dict(trace) if isinstance(trace, dict) else Trace()
        timings["exec_s"] = 0.0 if dup_of[i] is not None else round(float(getattr(res, "elapsed_s", 0.0) or 0.0), 4)
        category = failure_category(status, error)
        broken = backend_failure(trace)  # a tool backend failed under the program, even if it caught it
        if category != "none":
            if broken and category == "program_error":
                category, error = "tool_error", error or broken
            verdict = Verdict(strict=False, lenient=False, checker=checker.name, category=category,
                              detail=(error or "")[:500])
        elif cfg.labels and ex.answer is not None:
            verdict = checker.check(answer, ex)
            if broken and not verdict.lenient:
                verdict = Verdict(strict=False, lenient=False, checker=checker.name, category="tool_error",
                                  detail=broken[:500])
        elif broken:
            verdict = Verdict(strict=False, lenient=False, checker=checker.name, category="tool_error",
                              detail=broken[:500])
        else:
            verdict = Verdict(strict=False, lenient=False, checker=checker.name, category="none",
                              detail="not checked (no labels)")
        cands.append(Candidate(**base, status=status, answer=answer, error=error,
                               stdout=str(getattr(res, "stdout", "") or ""), trace=trace, verdict=verdict,
                               timings=timings))
        extra.append({"duplicate_of": dup_of[i]} if dup_of[i] is not None else {})
    return cands, extra
