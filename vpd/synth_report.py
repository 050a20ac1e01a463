"""The synth run summary: pass@k by question type, failure categories, tools, LLM, time per stage.

Built from the run directory alone (committed candidates + manifest sessions), so it is the same
after a resume as after an uninterrupted run. pass@k uses the unbiased estimator of Chen et al.
(2021) from the ``n`` recorded candidates of each example with ``c`` passing (lenient)::

    pass@k = 1 - C(n - c, k) / C(n, k)      (1 when n - c < k)

averaged over examples. ``verified_share`` is the share of examples with a chosen program.
``retryable`` counts examples that infrastructure failures (``llm_error``, ``tool_error``) cost a
candidate and that ``--resume`` would redo (:mod:`vpd.synth_failures`); ``stopped`` is the last
session's reason for stopping early, if it did. ``failure_attribution`` is
``RUN/failure_attribution.json`` when an analysis wrote it (tool vs logic errors per difficulty,
:mod:`vpd.benchmarks.shapes_attribution`; it never changes a verdict).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from math import comb
from pathlib import Path
from typing import Any

from vpd.checkers import checker_for
from vpd.runs import RunStore
from vpd.synth_failures import INFRASTRUCTURE, LEGACY_CATEGORIES, is_retryable
from vpd.types import Example

CATEGORIES = ("none", "no_code", "syntax", "llm_error", "tool_error", "image_error", "rejected", "program_error",
              "timeout", "killed", "wrong_answer")
REPORT_VERSION = "1"
#: Written by ``vpd synth-attribute`` / ``vpd synth --attribute`` (vpd.benchmarks.shapes_attribution).
ATTRIBUTION_FILE = "failure_attribution.json"


def pass_at_k(n: int, c: int, k: int) -> float:
    """Unbiased pass@k from n samples with c correct (k is capped at n)."""
    if n <= 0:
        return 0.0
    k = min(k, n)
    if n - c < k:
        return 1.0
    return 1.0 - comb(n - c, k) / comb(n, k)


def build_report(run: str | Path) -> dict[str, Any]:
    """The summary dict of a run directory (see the module docstring)."""
    store = RunStore(run)
    manifest = store.read_manifest()
    cfg = manifest.get("config", {})
    k = int(cfg.get("k") or 1)
    labels = bool(cfg.get("labels", True))
    per_type: dict[str, dict[str, float]] = defaultdict(lambda: defaultdict(float))
    cats: Counter[str] = Counter()
    strict_lenient = Counter()
    tool_calls = cached_calls = tool_errors = 0
    programs = unique = 0
    exec_s = 0.0
    n_examples = image_error_examples = retryable = 0
    for block in store.blocks():
        n_examples += 1
        retryable += is_retryable(block.categories(), selected=block.selected() is not None, labels=labels)
        image_error_examples += any((ln.get("verdict") or {}).get("category") == "image_error" for ln in block.lines)
        ex = Example.from_dict(block.example)
        lines = block.lines
        n = len(lines)
        c = sum(1 for ln in lines if (ln.get("verdict") or {}).get("lenient"))
        cs = sum(1 for ln in lines if (ln.get("verdict") or {}).get("strict"))
        row = per_type[ex.qtype or "-"]
        row["examples"] += 1
        row["candidates"] += n
        row["pass@1"] += pass_at_k(n, c, 1)
        row[f"pass@{k}"] += pass_at_k(n, c, k)
        row["strict_pass@1"] += pass_at_k(n, cs, 1)
        row["verified"] += 1 if any(ln.get("selected") for ln in lines) else 0
        if not labels:
            pred = lines[0].get("prediction")
            row["answered"] += pred is not None
            if ex.answer is not None:
                v = checker_for(ex, cfg.get("checker")).check(pred, ex)
                row["majority_correct"] += v.lenient
                row["labelled"] += 1
        for ln in lines:
            verdict = ln.get("verdict") or {}
            category = verdict.get("category", "none")
            cats[LEGACY_CATEGORIES.get(category, category)] += 1
            strict_lenient[(bool(verdict.get("strict")), bool(verdict.get("lenient")))] += 1
            programs += 1
            if ln.get("duplicate_of") is None and ln.get("status") not in ("not_run",):
                unique += 1
                exec_s += float((ln.get("timings") or {}).get("exec_s", 0.0))
                for call in (ln.get("trace") or {}).get("calls", []):
                    tool_calls += 1
                    cached_calls += bool(call.get("cached"))
                    tool_errors += bool(call.get("error"))
    by_type = {}
    totals: dict[str, float] = defaultdict(float)
    for qtype, row in sorted(per_type.items()):
        by_type[qtype] = _summarise(row, k, labels)
        for key, v in row.items():
            totals[key] += v
    sessions = manifest.get("sessions", [])
    llm = {key: sum(int(s.get(key, 0)) for s in sessions)
           for key in ("llm_requests", "llm_completions", "llm_errors", "prompt_tokens", "completion_tokens")}
    stage_s: dict[str, float] = defaultdict(float)
    for s in sessions:
        for key, v in (s.get("stage_s") or {}).items():
            stage_s[key] += float(v)
    wall = sum(max(0.0, float(s.get("finished", 0)) - float(s.get("started", 0))) for s in sessions)
    written = sum(int(s.get("examples_written", 0)) for s in sessions)
    backend = {key: sum(int((s.get("toolbox") or {}).get(key, 0)) for s in sessions)
               for key in ("calls", "cache_hits", "analysis_hits", "backend_calls")}
    counts = manifest.get("counts", {})
    report = {
        "report_version": REPORT_VERSION,
        "run": str(run),
        "k": k,
        "labels": labels,
        "examples": n_examples,
        "overall": _summarise(totals, k, labels) if n_examples else {},
        "by_qtype": by_type,
        "failure_categories": {c: cats.get(c, 0) for c in CATEGORIES if cats.get(c, 0)}
        | {c: v for c, v in cats.items() if c not in CATEGORIES},
        "candidates": programs,
        "strict_vs_lenient": {"strict": sum(v for (s, _), v in strict_lenient.items() if s),
                              "lenient": sum(v for (_, l), v in strict_lenient.items() if l)},
        "executions": unique,
        "tools": {"calls": tool_calls, "cached": cached_calls, "errors": tool_errors,
                  "cache_hit_rate": round(cached_calls / tool_calls, 4) if tool_calls else 0.0,
                  "toolbox": backend},
        "llm": llm,
        "time_s": {"stages": {key: round(v, 3) for key, v in stage_s.items()}, "wall": round(wall, 3),
                   "exec_sum": round(exec_s, 3),
                   "examples_per_s": round(written / wall, 4) if wall > 0 else 0.0},
        "input": {key: counts.get(key) for key in ("lines_ok", "bad_lines", "duplicate_ids", "other_split", "examples")
                  if key in counts},
        # committed candidates say it even after a SIGKILL; sessions also count examples without code
        "image_errors": max(image_error_examples, sum(int(s.get("image_errors", 0)) for s in sessions)),
        "sessions": len(sessions),
        "retryable": retryable,
        "infrastructure_failures": {c: cats.get(c, 0) for c in sorted(INFRASTRUCTURE)},
        "stopped": sessions[-1].get("stopped") if sessions else None,
        "versions": manifest.get("versions", {}),
    }
    attribution = Path(run) / ATTRIBUTION_FILE
    if attribution.is_file():
        report["failure_attribution"] = json.loads(attribution.read_text())
    return report


def _summarise(row: dict[str, float], k: int, labels: bool) -> dict[str, float]:
    e = max(1.0, row.get("examples", 0))
    out = {"examples": int(row.get("examples", 0)), "candidates": int(row.get("candidates", 0))}
    if labels:
        out.update({"pass@1": round(row.get("pass@1", 0) / e, 4), f"pass@{k}": round(row.get(f"pass@{k}", 0) / e, 4),
                    "strict_pass@1": round(row.get("strict_pass@1", 0) / e, 4),
                    "verified_share": round(row.get("verified", 0) / e, 4)})
    else:
        out["answered_share"] = round(row.get("answered", 0) / e, 4)
        if row.get("labelled"):
            out["majority_accuracy"] = round(row.get("majority_correct", 0) / row["labelled"], 4)
    return out


def print_report(report: dict[str, Any], console: Any = None) -> None:
    """Render the report as rich tables."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    k = report.get("k", 1)
    labels = report.get("labels", True)
    t = Table(title=f"synth: {report.get('run')}  ({report.get('examples')} examples, k={k})")
    t.add_column("qtype")
    t.add_column("examples", justify="right")
    cols = ["pass@1", f"pass@{k}", "strict_pass@1", "verified_share"] if labels else ["answered_share", "majority_accuracy"]
    for c in cols:
        t.add_column(c, justify="right")
    rows = list(report.get("by_qtype", {}).items()) + [("ALL", report.get("overall", {}))]
    for name, row in rows:
        t.add_row(name, str(row.get("examples", 0)), *[_pct(row.get(c)) for c in cols],
                  style="bold" if name == "ALL" else None)
    console.print(t)
    f = Table(title="candidates by outcome")
    f.add_column("category")
    f.add_column("count", justify="right")
    for c, v in report.get("failure_categories", {}).items():
        f.add_row("passed / ok" if c == "none" else c, str(v))
    console.print(f)
    tools, llm, tm = report.get("tools", {}), report.get("llm", {}), report.get("time_s", {})
    s = Table(title="resources")
    s.add_column("what")
    s.add_column("value", justify="right")
    s.add_row("tool calls", str(tools.get("calls", 0)))
    s.add_row("tool cache hit rate", _pct(tools.get("cache_hit_rate")))
    s.add_row("LLM requests", str(llm.get("llm_requests", 0)))
    s.add_row("LLM errors", str(llm.get("llm_errors", 0)))
    s.add_row("prompt / completion tokens", f"{llm.get('prompt_tokens', 0)} / {llm.get('completion_tokens', 0)}")
    for stage, v in (tm.get("stages") or {}).items():
        s.add_row(f"time {stage} (s)", f"{v:.1f}")
    s.add_row("wall time (s)", f"{tm.get('wall', 0):.1f}")
    s.add_row("examples/s", f"{tm.get('examples_per_s', 0):.3f}")
    inp = report.get("input", {})
    if inp.get("bad_lines"):
        s.add_row("bad dataset lines", str(inp["bad_lines"]))
    if report.get("image_errors"):
        s.add_row("unreadable images", str(report["image_errors"]))
    if report.get("retryable"):
        s.add_row("retryable (LLM / tool backend failed; --resume redoes)", str(report["retryable"]))
    console.print(s)
    if report.get("stopped"):
        console.print(f"[red]{report['stopped']}[/red]")
    if report.get("failure_attribution"):
        print_attribution(report["failure_attribution"], console)


def print_attribution(attribution: dict[str, Any], console: Any = None) -> None:
    """The tool-vs-logic table of failed candidates, per difficulty (an oracle re-run's verdicts)."""
    from rich.console import Console
    from rich.table import Table

    console = console or Console()
    a = Table(title="failed candidates: tool error vs logic error (re-run on the scene-record oracle)")
    cols = ("candidates", "failed", "tool", "logic", "no_program", "infrastructure")
    for c in ("difficulty", *cols, "tool_share"):
        a.add_column(c, justify="left" if c == "difficulty" else "right")
    rows = list((attribution.get("by_difficulty") or {}).items()) + [("ALL", attribution.get("overall") or {})]
    for name, row in rows:
        a.add_row(name, *[str(row.get(c, 0)) for c in cols], _pct(row.get("tool_share")),
                  style="bold" if name == "ALL" else None)
    console.print(a)


def _pct(v: Any) -> str:
    return "-" if v is None else f"{100 * float(v):.1f}%"


def load_report(run: str | Path) -> dict[str, Any]:
    p = Path(run) / "report.json"
    return json.loads(p.read_text()) if p.exists() else build_report(run)
