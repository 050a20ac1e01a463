"""The rationalize stage: every verified example of a run -> a checked rationale.

Writes ``RUN/rationales.jsonl`` (``docs/contracts.md``: example, program, trace_text, rationale,
rewriter, fallback; plus ``kept`` and ``check``) and adds a ``rationalize`` section to
``RUN/report.json``. A rewriter output that fails :func:`check_rationale` falls back to the template
(counted); if the template fails too the line is written with ``kept: false`` and counted, so
nothing is lost silently.

With ``min_agreement`` > 0 each verified example is rationalized from its passing program that is
right on the most images asking its question (:mod:`vpd.distill.program_agreement`; a change from
synth's choice is counted in ``agreement_switched``); if even that one is right on fewer than
``min_agreement`` of them, the example is not rewritten: its line is written with ``kept: false``
and reason ``agreement``, and counted in ``agreement_dropped``.

An unlabelled run (``vpd synth --no-labels``) has no verified examples; its programs chosen by
majority vote (``predictions.jsonl``, :func:`vpd.distill.run_io.read_chosen`) are rationalized
instead, counted in ``unlabelled`` (their answer is the program's; nothing checked it against a label).
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable

from vpd.distill.rationale import REWRITER_VERSION, TraceItem, load_rewriter, template_rationale
from vpd.distill.rationale_check import check_rationale, trace_facts
from vpd.distill.run_io import ReadStats, merge_report, read_chosen, read_verified, write_jsonl


@dataclass(kw_only=True)
class RationalizeReport:
    """Counts of one rationalize run (``kept`` rationales all passed the check)."""

    rewriter: str
    version: str = REWRITER_VERSION
    verified: int = 0
    unlabelled: int = 0  # of ``verified``: programs chosen by majority vote in a --no-labels run
    written: int = 0
    kept: int = 0
    rewriter_ok: int = 0
    fallbacks: int = 0
    fallback_reasons: dict[str, int] = field(default_factory=dict)
    dropped: int = 0
    dropped_reasons: list[str] = field(default_factory=list)
    bad_lines: int = 0
    seconds: float = 0.0
    min_agreement: float = 0.0
    agreement_dropped: int = 0
    agreement_switched: int = 0  # examples rationalized from another passing program that agrees more
    prompt_tokens: int = 0
    completion_tokens: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _reason_key(reason: str) -> str:
    return reason.split(":", 1)[0].strip() or "unknown"


def rationalize_items(items: list[TraceItem], rewriter: Any, report: RationalizeReport,
                      progress: Callable[[int], None] | None = None) -> list[dict[str, Any]]:
    """Rewrite, check and fall back for ``items``; returns the ``rationales.jsonl`` records."""
    records: list[dict[str, Any]] = []
    outputs = rewriter.rewrite(items) if rewriter.name != "template" else None
    for i, item in enumerate(items):
        facts = trace_facts(item.example, item.trace)
        answer = item.answer if item.answer is not None else item.trace.output
        text, fallback, used = None, False, rewriter.name
        if outputs is not None:
            out = outputs[i]
            report.prompt_tokens += out.prompt_tokens
            report.completion_tokens += out.completion_tokens
            if out.text:
                chk = check_rationale(out.text, item.example, item.trace, program_answer=answer, facts=facts)
                if chk.ok:
                    text = out.text
                    report.rewriter_ok += 1
                else:
                    key = _reason_key(chk.reason)
                    report.fallback_reasons[key] = report.fallback_reasons.get(key, 0) + 1
            else:
                key = _reason_key(out.error or "no text")
                report.fallback_reasons[key] = report.fallback_reasons.get(key, 0) + 1
            if text is None:
                fallback, used = True, "template"
                report.fallbacks += 1
        if text is None:
            text = template_rationale(item)
            if outputs is None:
                report.rewriter_ok += 1
            used = "template"
        chk = check_rationale(text, item.example, item.trace, program_answer=answer, facts=facts)
        if chk.ok:
            report.kept += 1
        else:
            report.dropped += 1
            if len(report.dropped_reasons) < 50:
                report.dropped_reasons.append(f"{item.example.id}: {chk.reason}")
        records.append({
            "example": item.example.to_dict(), "program": item.program, "trace_text": item.trace.text(),
            "rationale": text, "rewriter": used, "fallback": fallback, "kept": chk.ok,
            "answer": answer, "check": {"answer_ok": chk.answer_ok, "cites_ok": chk.cites_ok,
                                        "stated": chk.stated, "reason": chk.reason},
        })
        report.written += 1
        if progress is not None:
            progress(1)
    return records


def rationalize_run(run: str | Path, *, rewriter: str = "template", llm: str | None = None,
                    sampler: Any = None, show_progress: bool = True,
                    min_agreement: float = 0.0) -> RationalizeReport:
    """Rationalize every verified example of ``run``; writes ``rationales.jsonl`` and the report.

    ``min_agreement`` (0..1): use each example's best-agreeing passing program and skip examples
    where it is right on a smaller share of its question's images (see the module docstring); 0
    keeps every verified example with synth's chosen program."""
    run = Path(run)
    if not run.is_dir():
        raise FileNotFoundError(f"run directory not found: {run}")
    t0 = time.perf_counter()
    stats = ReadStats()
    verified = read_verified(run, stats)
    chosen = read_chosen(run, stats)
    verified += chosen
    opts: dict[str, Any] = {}
    if rewriter == "llm":
        if sampler is not None:
            opts["sampler"] = sampler
        if llm:
            opts["llm"] = llm
    rw = load_rewriter(rewriter, **opts)
    report = RationalizeReport(rewriter=rewriter, verified=len(verified), bad_lines=stats.bad_lines,
                               min_agreement=min_agreement, unlabelled=len(chosen))
    skipped: list[dict[str, Any]] = []
    if min_agreement > 0:
        verified, skipped, report.agreement_switched = _filter_agreement(run, verified, min_agreement)
        report.agreement_dropped = report.dropped = len(skipped)
        report.written = len(skipped)
    items = [TraceItem(example=v.example, program=v.candidate.program or "", trace=v.candidate.trace,
                       answer=v.candidate.answer) for v in verified]
    if show_progress and items:
        from rich.progress import Progress

        with Progress(transient=True) as prog:
            task = prog.add_task(f"rationalize ({rewriter})", total=len(items))
            records = rationalize_items(items, rw, report, lambda k: prog.advance(task, k))
    else:
        records = rationalize_items(items, rw, report)
    write_jsonl(run / "rationales.jsonl", records + skipped)
    report.seconds = round(time.perf_counter() - t0, 3)
    merge_report(run, "rationalize", report.to_dict())
    return report


def _filter_agreement(run: Path, verified: list[Any], threshold: float
                      ) -> tuple[list[Any], list[dict[str, Any]], int]:
    """(verified examples, each with its best-agreeing passing program, for those reaching
    ``threshold``; ``kept: false`` records for the others; how many changed program)."""
    from vpd.distill.program_agreement import agreement_index
    from vpd.distill.run_io import Verified

    index = agreement_index(run)
    keep: list[Any] = []
    skipped: list[dict[str, Any]] = []
    switched = 0
    for v in verified:
        best = index.best(v.example, prefer=v.candidate)
        if best is not None and best[1].accuracy >= threshold:
            cand = best[0]
            if cand.program != v.candidate.program:
                switched += 1
                v = Verified(example=v.example, candidate=cand)
            keep.append(v)
            continue
        agree = best[1] if best is not None else index.of(v.example, v.candidate.program)
        share = agree.accuracy if agree is not None else 0.0
        record = f"{agree.passed}/{agree.images}" if agree is not None else "0/0"
        reason = (f"agreement: best passing program right on {record} images of its question "
                  f"({share:.2f} < {threshold:g})")
        skipped.append({
            "example": v.example.to_dict(), "program": v.candidate.program or "",
            "trace_text": v.candidate.trace.text(), "rationale": None, "rewriter": None, "fallback": False,
            "kept": False, "answer": v.candidate.answer,
            "check": {"answer_ok": None, "cites_ok": None, "stated": None, "reason": reason},
        })
    return keep, skipped, switched
