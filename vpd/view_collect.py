"""Collect what the run viewer shows from a run folder (read-only, tolerant of missing parts).

Reads ``candidates-*.jsonl``, ``verified.jsonl``, ``rationales.jsonl``, ``lskd.jsonl``,
``report.json``, training ``metrics.jsonl`` and eval ``results.json`` where present. Partial or
malformed lines are skipped and counted (a run may still be writing).
"""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from vpd.synth_report import pass_at_k


@dataclass(frozen=True, kw_only=True)
class ExampleView:
    """Everything shown for one example: the example, its candidates, the chosen one, its rationale."""

    id: str
    image: str
    question: str
    answer: str | None
    qtype: str
    choices: list[str] | None
    candidates: list[dict[str, Any]]
    chosen: int | None
    rationale: str | None
    verdict: str  # "verified" | "failed" | "unlabelled"
    category: str  # failure category of the best candidate ("none" if verified)
    tools: list[str]


@dataclass(frozen=True, kw_only=True)
class RunView:
    """A run's data for the report."""

    root: Path
    examples: list[ExampleView]
    report: dict[str, Any]
    manifest: dict[str, Any]
    lskd: list[dict[str, Any]]
    metrics: dict[str, list[dict[str, Any]]]
    evals: dict[str, dict[str, Any]]
    bad_lines: int = 0
    images: dict[str, str] = field(default_factory=dict)


def _read_jsonl(path: Path, counter: list[int]) -> Iterator[dict[str, Any]]:
    try:
        fh = path.open(encoding="utf-8", errors="replace")
    except OSError:
        return
    with fh:
        for line in fh:
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                counter[0] += 1
                continue
            if isinstance(rec, dict):
                yield rec
            else:
                counter[0] += 1


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return data if isinstance(data, dict) else {}
    except (OSError, json.JSONDecodeError):
        return {}


def _candidate_records(root: Path, bad: list[int]) -> Iterator[dict[str, Any]]:
    for file in sorted(root.glob("candidates-*.jsonl")):
        for rec in _read_jsonl(file, bad):
            if "candidates" in rec and isinstance(rec["candidates"], list):  # one line per example
                ex = rec.get("example") or {}
                for cand in rec["candidates"]:
                    if isinstance(cand, dict):
                        yield {**cand, "example": cand.get("example") or ex}
            elif "example_id" in rec or "candidate" in rec:
                cand = rec.get("candidate") if isinstance(rec.get("candidate"), dict) else rec
                yield {**cand, "example": rec.get("example") or cand.get("example") or {}}


def _category(cand: dict[str, Any]) -> str:
    verdict = cand.get("verdict") or {}
    if isinstance(verdict, dict) and verdict.get("lenient"):
        return "none"
    if isinstance(verdict, dict) and verdict.get("category") not in (None, "", "none"):
        return str(verdict["category"])
    status = cand.get("status") or "error"
    if cand.get("program") in (None, ""):
        return "no_code"
    return {"error": "runtime_error", "ok": "wrong_answer"}.get(status, status)


def _passed(cand: dict[str, Any]) -> bool:
    v = cand.get("verdict")
    return bool(isinstance(v, dict) and v.get("lenient"))


def collect(run_dir: str | Path, also: list[str | Path] | tuple = ()) -> RunView:
    """Read a run folder into a :class:`RunView`.

    ``also``: more folders (a student checkpoint, an LSKD run, an eval folder) whose training
    metrics, eval results and LSKD triples join the report.
    """
    root = Path(run_dir)
    if not root.is_dir():
        raise FileNotFoundError(f"run folder not found: {root}")
    bad = [0]
    by_example: dict[str, list[dict[str, Any]]] = defaultdict(list)
    example_meta: dict[str, dict[str, Any]] = {}
    for cand in _candidate_records(root, bad):
        ex = cand.get("example") or {}
        ex_id = str(cand.get("example_id") or ex.get("id") or "")
        if not ex_id:
            bad[0] += 1
            continue
        if ex:
            example_meta.setdefault(ex_id, ex)
        by_example[ex_id].append({k: v for k, v in cand.items() if k != "example"})
    chosen: dict[str, dict[str, Any]] = {}
    for rec in _read_jsonl(root / "verified.jsonl", bad):
        ex = rec.get("example") or {}
        cand = rec.get("candidate") or {}
        ex_id = str(ex.get("id") or cand.get("example_id") or "")
        if ex_id:
            chosen[ex_id] = cand
            example_meta.setdefault(ex_id, ex)
    rationales: dict[str, str] = {}
    for rec in _read_jsonl(root / "rationales.jsonl", bad):
        ex = rec.get("example") or {}
        ex_id = str(ex.get("id") or rec.get("example_id") or "")
        if ex_id and rec.get("rationale"):
            rationales[ex_id] = str(rec["rationale"])
    examples: list[ExampleView] = []
    for ex_id in sorted(set(by_example) | set(chosen)):
        ex = example_meta.get(ex_id, {})
        cands = sorted(by_example.get(ex_id, []), key=lambda c: c.get("index", 0))
        chosen_idx: int | None = None
        if ex_id in chosen:
            chosen_idx = chosen[ex_id].get("index")
            if not cands:
                cands = [chosen[ex_id]]
        labelled = ex.get("answer") is not None
        passed = [c for c in cands if _passed(c)]
        if chosen_idx is None and passed:
            chosen_idx = passed[0].get("index")
        verdict = "verified" if (passed or ex_id in chosen) else ("failed" if labelled else "unlabelled")
        cats = Counter(_category(c) for c in cands)
        category = "none" if verdict == "verified" else (cats.most_common(1)[0][0] if cats else "no_code")
        tools = sorted({call.get("tool", "") for c in cands
                        for call in ((c.get("trace") or {}).get("calls") or []) if isinstance(call, dict)})
        examples.append(ExampleView(
            id=ex_id, image=str(ex.get("image", "")), question=str(ex.get("question", "")),
            answer=None if ex.get("answer") is None else str(ex.get("answer")),
            qtype=str(ex.get("qtype") or "unknown"), choices=ex.get("choices"), candidates=cands,
            chosen=chosen_idx, rationale=rationales.get(ex_id), verdict=verdict, category=category,
            tools=[t for t in tools if t]))
    folders = [root] + [Path(a) for a in also if Path(a).is_dir()]
    lskd = [rec for f in folders for rec in _read_jsonl(f / "lskd.jsonl", bad)]
    metrics: dict[str, list[dict[str, Any]]] = {}
    evals: dict[str, dict[str, Any]] = {}
    for folder in folders:
        tag = "" if folder == root else folder.name + "/"
        for mfile in sorted(folder.rglob("metrics.jsonl")):
            metrics[(tag + str(mfile.parent.relative_to(folder))).rstrip("/.") or "."] = list(_read_jsonl(mfile, bad))
        for rfile in sorted(folder.rglob("results.json")):
            evals[(tag + str(rfile.parent.relative_to(folder))).rstrip("/.") or "."] = _read_json(rfile)
    return RunView(root=root, examples=examples, report=_read_json(root / "report.json"),
                   manifest=_read_json(root / "manifest.json"), lskd=lskd, metrics=metrics,
                   evals=evals, bad_lines=bad[0])


def summarise(view: RunView) -> dict[str, Any]:
    """Summary numbers for the report: pass@k curve per qtype, failures, tool calls, cache."""
    per_type: dict[str, list[tuple[int, int]]] = defaultdict(list)
    failures: Counter[str] = Counter()
    tool_calls: Counter[str] = Counter()
    tool_ms: dict[str, list[float]] = defaultdict(list)
    cached = total_calls = 0
    max_n = 0
    for ex in view.examples:
        n = len(ex.candidates)
        c = sum(1 for cand in ex.candidates if _passed(cand))
        max_n = max(max_n, n)
        if ex.answer is not None:
            per_type[ex.qtype].append((n, c))
        for cand in ex.candidates:
            cat = _category(cand)
            if cat != "none":
                failures[cat] += 1
            for call in (cand.get("trace") or {}).get("calls") or []:
                if not isinstance(call, dict):
                    continue
                tool = str(call.get("tool", ""))
                tool_calls[tool] += 1
                tool_ms[tool].append(float(call.get("ms") or 0.0))
                total_calls += 1
                cached += bool(call.get("cached"))
    ks = list(range(1, max(1, max_n) + 1))
    curve: dict[str, list[float]] = {}
    for qtype, rows in sorted(per_type.items()):
        curve[qtype] = [sum(pass_at_k(n, c, k) for n, c in rows) / len(rows) for k in ks]
    all_rows = [r for rows in per_type.values() for r in rows]
    if all_rows:
        curve["all"] = [sum(pass_at_k(n, c, k) for n, c in all_rows) / len(all_rows) for k in ks]
    latency = {t: {"calls": tool_calls[t], "mean_ms": sum(v) / len(v) if v else 0.0,
                   "p50_ms": sorted(v)[len(v) // 2] if v else 0.0} for t, v in tool_ms.items()}
    verdicts = Counter(ex.verdict for ex in view.examples)
    return {
        "examples": len(view.examples), "verdicts": dict(verdicts), "ks": ks, "pass_at_k": curve,
        "failures": dict(failures.most_common()), "tools": latency,
        "cache_hit_rate": (cached / total_calls) if total_calls else None,
        "qtypes": {q: len(r) for q, r in per_type.items()},
    }
