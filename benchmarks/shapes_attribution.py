"""Did a synth candidate fail because a tool erred or because its logic is wrong? (``shapes`` world)

For every failed candidate of a ``vpd synth`` run whose example carries scene records, the
program is re-run on the **oracle toolbox** (:mod:`vpd.benchmarks.shapes_oracle`: the same answer
logic over the scene's true objects) and its answer checked with the run's checker:

    tool          it passes on the oracle: perfect perception would have saved it (a tool error)
    logic         it fails on the oracle too (a logic error)
    no_program    no program ran (no_code, syntax, rejected): the writer's error, not re-run
    infrastructure  the LLM, a tool backend or the image failed (llm_error, tool_error, image_error)

Counts are per difficulty (the example's ``difficulty``; ``easy`` when absent) and overall;
``tool_share`` = tool / (tool + logic). This is an analysis of a finished run: it writes
``RUN/failure_attribution.json`` and changes no verdict, trace or verified program — the oracle
reads the labels and is never used for verification or training.
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from pathlib import Path
from typing import Any

from vpd.checkers import checker_for
from vpd.runs import RunStore
from vpd.synth_report import ATTRIBUTION_FILE as FILE_NAME
from vpd.types import Example

ATTRIBUTION_VERSION = "1"
NO_PROGRAM = frozenset({"no_code", "syntax", "rejected"})
INFRASTRUCTURE = frozenset({"llm_error", "tool_error", "image_error"})
BUCKETS = ("tool", "logic", "no_program", "infrastructure")


class _LockedToolbox:
    """Serialises calls into the run's own toolbox (for the non-perception tools, e.g. llm_query)."""

    def __init__(self, toolbox: Any) -> None:
        self.inner, self.backends, self._lock = toolbox, toolbox.backends, threading.Lock()

    def call_json(self, tool: str, image: Any, **args: Any) -> tuple[Any, bool]:
        with self._lock:
            return self.inner.call_json(tool, image, **args)


def attribute_run(run: str | Path, *, workers: int = 2, timeout_s: float | None = None,
                  memory_mb: int | None = None, tools: str | None = None, write: bool = True) -> dict[str, Any]:
    """Attribute the failed candidates of ``run`` (see the module docstring); returns the summary
    and, with ``write``, saves it as ``RUN/failure_attribution.json``. ``tools`` (default: the
    run's ``--tools``) serves the tools the oracle does not answer; time in s, memory in MiB."""
    from vpd.benchmarks.shapes_oracle import OracleHost, OracleToolbox
    from vpd.sandbox import SandboxPool
    from vpd.tools import load

    store = RunStore(run)
    cfg = store.read_manifest().get("config", {})
    timeout_s = float(timeout_s if timeout_s is not None else cfg.get("timeout_s", 5.0))
    memory_mb = int(memory_mb if memory_mb is not None else cfg.get("memory_mb", 512))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: {b: 0 for b in ("failed", "candidates", *BUCKETS)})
    jobs: dict[tuple[str, str], dict[str, Any]] = {}  # (program, example id) -> sandbox job
    pending: list[tuple[str, tuple[str, str], Example]] = []
    no_scene = 0
    for block in store.blocks():
        ex = Example.from_dict(block.example)
        scene = ex.metadata.get("scene")
        if not isinstance(scene, list):
            no_scene += len(block.lines)
            continue
        level = str(ex.metadata.get("difficulty") or "easy")
        for ln in block.lines:
            category = str((ln.get("verdict") or {}).get("category", "none"))
            counts[level]["candidates"] += 1
            if category == "none":
                continue
            counts[level]["failed"] += 1
            if category in INFRASTRUCTURE:
                counts[level]["infrastructure"] += 1
            elif category in NO_PROGRAM or not ln.get("program"):
                counts[level]["no_program"] += 1
            else:
                key = (str(ln["program"]), ex.id)
                jobs.setdefault(key, {"source": key[0], "image": ex.image, "scene": scene})
                pending.append((level, key, ex))
    answers: dict[tuple[str, str], tuple[str, Any]] = {}
    if jobs:
        base = _LockedToolbox(load(tools or cfg.get("tools") or "shapes"))
        keys = list(jobs)
        with SandboxPool(workers=workers, timeout_s=timeout_s, memory_mb=memory_mb, host_factory=OracleHost) as pool:
            results = pool.map([{"source": jobs[k]["source"], "image": jobs[k]["image"],
                                 "tools": OracleToolbox(jobs[k]["scene"], base)} for k in keys])  # type: ignore[arg-type]
        answers = {k: (r.status, r.answer) for k, r in zip(keys, results)}
        base.inner.close()
    for level, key, ex in pending:
        status, answer = answers[key]
        ok = status == "ok" and checker_for(ex, cfg.get("checker")).check(answer, ex).lenient
        counts[level]["tool" if ok else "logic"] += 1
    summary = _summarise(dict(counts))
    summary.update({"version": ATTRIBUTION_VERSION, "run": str(run), "reruns": len(jobs),
                    "unattributed_no_scene": no_scene,
                    "oracle": "scene records (vpd.benchmarks.shapes_oracle); analysis only"})
    if write:
        (Path(run) / FILE_NAME).write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _summarise(counts: dict[str, dict[str, int]]) -> dict[str, Any]:
    from vpd.benchmarks.shapes_difficulty import LEVELS

    order = [lv for lv in LEVELS if lv in counts] + sorted(lv for lv in counts if lv not in LEVELS)
    total = {b: sum(c[b] for c in counts.values()) for b in ("failed", "candidates", *BUCKETS)}
    rows = {lv: counts[lv] for lv in order}
    for row in [*rows.values(), total]:
        ran = row["tool"] + row["logic"]
        row["tool_share"] = round(row["tool"] / ran, 4) if ran else None  # type: ignore[assignment]
    return {"by_difficulty": rows, "overall": total}


def load_attribution(run: str | Path) -> dict[str, Any] | None:
    """``RUN/failure_attribution.json`` if a previous :func:`attribute_run` wrote it."""
    p = Path(run) / FILE_NAME
    return json.loads(p.read_text()) if p.is_file() else None
