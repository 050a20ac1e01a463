"""The synth stage on Ray: throughput with 1 vs 2 concurrent shard workers, and per-call costs.

    python -m vpd.benchmarks.perf.ray_synth [--quick] [--n 120] [--k 5] [--shards 4] [--json OUT]

A local Ray cluster with 2 CPUs (this machine) runs the same shapes dataset twice with the same
shards: once with each shard task reserving 2 CPUs (one shard at a time = 1 worker) and once
reserving 1 CPU (2 workers at once). Both runs use one tool actor (the ``shapes`` backend) and
the ``replay`` sampler fed with the k nearest few-shot library programs per question (no LLM).
A warm-up run first starts the worker processes, so neither measurement pays Python start-up.

It also prints the per-call cost profile of the measured run, the inputs of the 1M-example
estimate in ``docs/scale.md``: sandbox seconds per executed program, tool calls per program,
backend milliseconds per tool call (by tool), and prompt / completion tokens per LLM prompt
(the replay sampler estimates tokens at ~3.5 characters per token), and the estimate of GPU-hours
and wall time for 1M examples with k = 5 computed from them (:func:`estimate`, :data:`ASSUMPTIONS`).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any


def cost_profile(run: Path) -> dict[str, Any]:
    """Per-call costs measured in a finished run directory."""
    from vpd.runs import RunStore

    exec_s: list[float] = []
    calls_per_program: list[int] = []
    tool_ms: dict[str, list[float]] = defaultdict(list)
    for block in RunStore(run).blocks():
        for line in block.lines:
            if line.get("duplicate_of") is not None or line.get("status") == "not_run":
                continue
            exec_s.append(float((line.get("timings") or {}).get("exec_s", 0.0)))
            calls = (line.get("trace") or {}).get("calls", [])
            calls_per_program.append(len(calls))
            for c in calls:
                if not c.get("cached") and c.get("ms") is not None:
                    tool_ms[str(c.get("tool"))].append(float(c["ms"]))
    report = json.loads((run / "report.json").read_text())
    llm = report.get("llm", {})
    req = max(1, int(llm.get("llm_requests", 0)))
    comps = max(1, int(llm.get("llm_completions", 0)))
    return {
        "executed_programs": len(exec_s),
        "sandbox_s_per_program": {"mean": round(statistics.fmean(exec_s), 4) if exec_s else 0.0,
                                  "median": round(statistics.median(exec_s), 4) if exec_s else 0.0},
        "tool_calls_per_program": round(statistics.fmean(calls_per_program), 3) if calls_per_program else 0.0,
        "tool_ms_per_call": {t: {"n": len(v), "median": round(statistics.median(v), 3),
                                 "mean": round(statistics.fmean(v), 3)} for t, v in sorted(tool_ms.items())},
        # every completion carries its prompt's token count: per completion = per prompt
        "prompt_tokens_per_prompt": round(int(llm.get("prompt_tokens", 0)) / comps, 1),
        "completion_tokens_per_completion": round(int(llm.get("completion_tokens", 0)) / comps, 1),
        "completions_per_request": round(comps / req, 2),
        "executed_per_candidate": round(len(exec_s) / max(1, int(report.get("candidates", 0))), 4),
        "tool_cache_hit_rate": (report.get("tools") or {}).get("cache_hit_rate", 0.0),
    }


#: Stated assumptions of the 1M-example estimate (A100 80GB; sources in docs/scale.md).
ASSUMPTIONS = {
    "examples": 1_000_000,
    "k": 5,
    "distinct_question_share": 1.0,  # worst case: no question-level reuse (GQA/A-OKVQA-like data)
    "completion_tokens_per_program": 120,  # real coder models write longer programs than the library's
    "decode_tok_s_per_gpu": 3000,  # vLLM, 7B coder, A100 80GB, many concurrent requests
    "prefill_tok_s_per_gpu": 10000,  # 7B: ~14 GFLOP/token at ~45% of 312 TFLOP/s bf16
    "shared_prefix_cached": True,  # vLLM --enable-prefix-caching: the API section is prefilled once
    "tool_gpu_ms_per_call": 50.0,  # GroundingDINO-T / BLIP-2-class backends, batched, per call
    "tool_cache_hit_rate": 0.3,
    "sandbox_cpus_per_node": 32,
}


def estimate(profile: dict[str, Any], api_tokens: int, a: dict[str, Any] = ASSUMPTIONS) -> dict[str, Any]:
    """GPU-hours and wall time of the synth stage for ``a["examples"]`` examples, from the measured
    ``profile`` (:func:`cost_profile`) and the stated assumptions ``a``."""
    questions = a["examples"] * a["distinct_question_share"]
    prompt = profile["prompt_tokens_per_prompt"]
    prefill_tokens = questions * (prompt - (api_tokens if a["shared_prefix_cached"] else 0))
    decode_tokens = questions * a["k"] * a["completion_tokens_per_program"]
    llm_gpu_h = (prefill_tokens / a["prefill_tok_s_per_gpu"] + decode_tokens / a["decode_tok_s_per_gpu"]) / 3600
    executed_per_example = profile["executed_per_candidate"] * a["k"]
    tool_calls = a["examples"] * executed_per_example * profile["tool_calls_per_program"]
    tool_gpu_h = tool_calls * (1 - a["tool_cache_hit_rate"]) * a["tool_gpu_ms_per_call"] / 1000 / 3600
    sandbox_cpu_h = a["examples"] * executed_per_example * profile["sandbox_s_per_program"]["mean"] / 3600
    total = llm_gpu_h + tool_gpu_h
    return {"prefill_tokens": int(prefill_tokens), "decode_tokens": int(decode_tokens),
            "llm_gpu_hours": round(llm_gpu_h, 1), "tool_calls": int(tool_calls), "tool_gpu_hours": round(tool_gpu_h, 1),
            "sandbox_cpu_hours": round(sandbox_cpu_h, 1), "gpu_hours": round(total, 1),
            "wall_hours": {str(g): round(total / g, 1) for g in (8, 16, 32, 64)},
            "llm_share_of_gpus": round(llm_gpu_h / total, 2) if total else 0.0}


def api_prompt_tokens(tools: str = "shapes") -> int:
    """Estimated tokens of the prompt's API section (the prefix shared by every prompt)."""
    from vpd.programs.prompt import PromptBuilder
    from vpd.programs.sampler_base import estimate_tokens
    from vpd.tools import load

    return estimate_tokens(PromptBuilder(load(tools).tools).api)


def _run(cfg: Any, *, task_cpus: float, shards: int) -> dict[str, Any]:
    from vpd.ray_engine import run_synth_ray

    t0 = time.perf_counter()
    summary = run_synth_ray(cfg, shards=shards, tool_actors=1, task_cpus=task_cpus)
    wall = time.perf_counter() - t0
    n = summary["report"]["examples"]
    return {"task_cpus": task_cpus, "wall_s": round(wall, 3), "examples": n,
            "examples_per_s": round(n / wall, 4) if wall else 0.0,
            "verified_share": summary["report"]["overall"].get("verified_share"),
            "worker_pids": sorted({r["pid"] for r in summary["results"]}),
            "tool_actor_calls": sum(a["calls"] for a in summary["tool_actors"])}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small dataset (40 examples, k = 3)")
    ap.add_argument("--n", type=int, default=None, help="examples (default 120, quick 40)")
    ap.add_argument("--k", type=int, default=None, help="programs per question (default 5, quick 3)")
    ap.add_argument("--shards", type=int, default=4)
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    n = args.n or (40 if args.quick else 120)
    k = args.k or (3 if args.quick else 5)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import ray

    from vpd.benchmarks.perf.synth import write_recordings
    from vpd.benchmarks.shapes import make_dataset
    from vpd.synth import SynthConfig

    tmp = Path(tempfile.mkdtemp(prefix="vpd-perf-ray-"))
    data = tmp / "data"
    make_dataset(data, n=max(1, n // 2), seed=3, per_image=2)
    rec = tmp / "recordings.jsonl"
    distinct = write_recordings(data, rec, k, n)

    def cfg(name: str, limit: int | None = n) -> SynthConfig:
        return SynthConfig(data=str(data), out=str(tmp / name), llm=f"replay:{rec}", tools="shapes", k=k,
                           limit=limit, cache="memory", workers=1, temperature=0.0, greedy_first=False,
                           progress=False)

    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        _run(cfg("warmup", limit=min(n, 8)), task_cpus=1, shards=2)  # start both worker processes
        one = _run(cfg("one_worker"), task_cpus=2, shards=args.shards)
        two = _run(cfg("two_workers"), task_cpus=1, shards=args.shards)
    finally:
        ray.shutdown()
    ratio = two["examples_per_s"] / max(1e-9, one["examples_per_s"])
    out = {"examples": n, "k": k, "distinct_questions": distinct, "shards": args.shards, "cpus": 2,
           "load_average": os.getloadavg()[0], "one_worker": one, "two_workers": two,
           "speedup_two_vs_one_worker": round(ratio, 3), "cost_profile": cost_profile(tmp / "two_workers")}
    out["api_prompt_tokens"] = api_prompt_tokens()
    out["estimate_1m_k5"] = {"assumptions": ASSUMPTIONS, **estimate(out["cost_profile"], out["api_prompt_tokens"])}
    print(json.dumps(out, indent=2))
    print(f"examples/s on Ray: 1 worker {one['examples_per_s']:.2f}, 2 workers {two['examples_per_s']:.2f} "
          f"-> ratio {ratio:.2f} (2 cores shared; load average {out['load_average']:.1f})")
    est = out["estimate_1m_k5"]
    print(f"1M examples, k = 5 (see docs/scale.md for the assumptions): LLM {est['llm_gpu_hours']} + tools "
          f"{est['tool_gpu_hours']} = {est['gpu_hours']} A100-hours; wall on 32 GPUs ~{est['wall_hours']['32']} h")
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
