"""The synth stage on a Ray cluster: shards of examples as Ray tasks, tool backends in Ray actors.

    driver ── partition examples by question ──▶ shard 0 … shard N-1 (Ray tasks, retried on failure)
                                                     │  each: the local synth stage
                                                     │  (vpd.synth.run_synth) on its examples, with
                                                     │  a sandbox pool on its node, the sampler
                                                     │  (e.g. balanced:openai:…|openai:…) and tools
                                                     │  through a ToolActor (num_gpus=…)
                                                     ▼
                 OUT/candidates-NNNNN.jsonl  ◀── one atomic commit per shard (temp file + move)

Exactly once. A shard's output becomes visible only through one atomic move of a complete file
named after the shard; a task first checks whether its shard is already committed and returns at
once if so. A killed worker, a retried task or a re-run with ``resume`` therefore never loses or
duplicates an example: at worst a shard is computed twice and committed once (shards are
deterministic: seeds are derived per question by ``vpd.synth.stable_seed``, not per worker).

Resume. With ``cfg.resume`` the driver reads the committed examples of ``OUT`` (written by this
engine or by the local one), partitions only the rest, and numbers the new shards after the
highest existing one, so no file is ever rewritten. Do not resume while the tasks of an earlier
driver may still run (Ray cancels a job's tasks when its driver exits).

Partitioning keeps every example of one (question, choices) in the same shard, so question-level
program reuse still samples once per distinct question.

Tools. With ``use_actor`` (default) each tool backend lives in one of ``tool_actors`` Ray actors
(``num_gpus=actor_gpus`` each, restarted if they die); a shard reaches its actor through
:class:`~vpd.ray_tools.ActorBackend` wrapped in the batching :class:`~vpd.tools.server.ToolServer`,
so the concurrent tool calls of a shard's sandbox workers travel to the GPU as one batch. Without
actors every task loads the tools itself (cached per worker process).

Outputs go to a local folder or any fsspec URI (``s3://…``, ``gs://…``; :mod:`vpd.ray_storage`); when the
output is local, the driver also rebuilds ``verified.jsonl`` and writes ``manifest.json`` / ``report.json``
exactly as the local engine does. Image paths must be readable from every node (shared storage);
relative paths are made absolute on the driver.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections import defaultdict
from pathlib import Path
from typing import Any, Sequence

from vpd.datasets import write_examples
from vpd.ray_storage import (SHARD_NAME, commit_file, committed_ids, committed_shards, is_local,
                             next_shard_number, remove_shards, shard_committed)
from vpd.ray_tools import ToolActorImpl, actor_toolbox
from vpd.synth import question_key, select_examples
from vpd.synth_config import RESUME_COMPARE, RESUME_KEYS, SynthConfig
from vpd.types import Example


# ---------------------------------------------------------------------------------------------
# shards
# ---------------------------------------------------------------------------------------------
# per worker process: models stay loaded across the shards a Ray worker runs
_PROCESS_SAMPLERS: dict[str, Any] = {}
_PROCESS_TOOLBOXES: dict[tuple[str, str | None, bool], Any] = {}


def _process_sampler(spec: str) -> Any:
    if spec not in _PROCESS_SAMPLERS:
        from vpd.programs.sampler_base import load_sampler

        _PROCESS_SAMPLERS[spec] = load_sampler(spec)
    return _PROCESS_SAMPLERS[spec]


def _process_toolbox(spec: str, cache: str | None, share_analyses: bool = True) -> Any:
    key = (spec, cache, share_analyses)
    if key not in _PROCESS_TOOLBOXES:
        from vpd.tools import load
        from vpd.tools.cache import open_cache

        _PROCESS_TOOLBOXES[key] = load(spec, cache=open_cache(cache), share_analyses=share_analyses)
    return _PROCESS_TOOLBOXES[key]


def partition(examples: Sequence[Example], n_shards: int, reuse: bool = True) -> list[list[Example]]:
    """Split examples into ``n_shards`` by a stable hash of their question key (order kept)."""
    shards: list[list[Example]] = [[] for _ in range(n_shards)]
    for ex in examples:
        key = json.dumps(question_key(ex, reuse), sort_keys=True, default=list)
        h = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16)
        shards[h % n_shards].append(ex)
    return shards


def synth_shard(cfg_dict: dict[str, Any], shard: int, records: list[dict[str, Any]], out: str,
                actor: Any = None) -> dict[str, Any]:
    """Run the local synth stage on one shard and commit its candidates file; idempotent.

    Returns ``{"shard", "skipped", "examples", "seconds", "verified", "pid", "session"}``
    (``session``: the shard's counters, as in a local run's manifest).
    """
    from vpd.runs import RunStore
    from vpd.synth import run_synth
    from vpd.tools.cache import open_cache
    from vpd.tools.server import ToolServer

    if shard_committed(out, shard):
        return {"shard": shard, "skipped": True, "pid": os.getpid()}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix=f"vpd-shard{shard}-") as tmp:
        data = Path(tmp) / "data"
        examples = [Example.from_dict(r) for r in records]
        write_examples(examples, data / "examples.jsonl")
        cfg = SynthConfig(**{**cfg_dict, "data": str(data), "out": str(Path(tmp) / "run"), "resume": False,
                             "overwrite": True, "limit": None, "split": None, "progress": False})
        if actor is not None:
            toolbox = actor_toolbox(actor, cache=open_cache(cfg.cache), share_analyses=cfg.share_analyses)
        else:
            toolbox = ToolServer(_process_toolbox(cfg.tools, cfg.cache, cfg.share_analyses), max_wait_ms=5.0)
        try:
            result = run_synth(cfg, toolbox=toolbox, sampler=_process_sampler(cfg.llm))
        finally:
            toolbox.close()  # stops this shard's batching threads; models stay loaded
        sessions = RunStore(cfg.out).read_manifest().get("sessions", [])
        verified = int(round(result.report.get("overall", {}).get("verified_share", 0.0) * len(records)))
        merged = Path(tmp) / "merged.jsonl"
        with merged.open("wb") as dst:
            for part in RunStore(cfg.out).shards():
                dst.write(part.read_bytes())
        if not shard_committed(out, shard):  # a concurrent attempt may have won: same content
            commit_file(merged, out, SHARD_NAME.format(shard))
    return {"shard": shard, "skipped": False, "examples": len(records), "seconds": round(time.time() - t0, 3),
            "verified": verified, "pid": os.getpid(),
            "session": sessions[-1] if sessions else {}}


def _merge_sessions(results: list[dict[str, Any]], started: float) -> dict[str, Any]:
    """One driver session (wall time of the driver) summing the counters of the shards' sessions."""
    merged: dict[str, Any] = defaultdict(int)
    stage_s: dict[str, float] = defaultdict(float)
    toolbox: dict[str, int] = defaultdict(int)
    for r in results:
        s = r.get("session") or {}
        for key in ("llm_requests", "llm_completions", "llm_errors", "prompt_tokens", "completion_tokens",
                    "programs_executed", "examples_written", "image_errors", "pending_at_start"):
            merged[key] += int(s.get(key, 0))
        for key, v in (s.get("stage_s") or {}).items():
            stage_s[key] += float(v)
        for key in ("calls", "cache_hits", "analysis_hits", "backend_calls"):
            toolbox[key] += int((s.get("toolbox") or {}).get(key, 0))
    prints = sorted({str(fp) for r in results if (fp := (r.get("session") or {}).get("prompt_fingerprint"))})
    return {**merged, "stage_s": dict(stage_s), "toolbox": dict(toolbox), "started": started,
            "finished": time.time(), "engine": "ray", "shards_run": sum(not r.get("skipped") for r in results),
            "prompt_fingerprint": ",".join(prints) or None}


def _prepare_output(cfg: SynthConfig) -> tuple[set[str], int]:
    """Check / create / clear ``cfg.out`` like the local engine; return (done ids, first free shard number)."""
    if is_local(cfg.out):
        from vpd.runs import RunStore

        root = cfg.out[len("file://"):] if cfg.out.startswith("file://") else cfg.out
        store = RunStore.open(root, cfg.to_dict(), resume=cfg.resume, overwrite=cfg.overwrite,
                              check_keys=RESUME_KEYS, compare_as=RESUME_COMPARE)
        store.close()
    else:
        names = committed_shards(cfg.out)
        if names and not cfg.resume:
            if not cfg.overwrite:
                from vpd.runs import RunExistsError

                raise RunExistsError(f"{cfg.out} already has results; use --resume or --overwrite")
            remove_shards(cfg.out, names)
    first = next_shard_number(cfg.out)
    return (committed_ids(cfg.out) if cfg.resume else set()), first


def _absolute_images(ex: Example) -> Example:
    import dataclasses

    if "://" in ex.image or Path(ex.image).is_absolute():
        return ex
    return dataclasses.replace(ex, image=str(Path(ex.image).absolute()))


def run_synth_ray(cfg: SynthConfig, *, address: str | None = None, shards: int | None = None,
                  tool_actors: int = 1, actor_gpus: float = 0.0, task_cpus: float = 1.0,
                  max_retries: int = 3, use_actor: bool = True, num_cpus: int | None = None) -> dict[str, Any]:
    """Run ``cfg`` on Ray and return the driver summary (``results`` per shard, ``report`` if local).

    ``address``: a running cluster (``"HOST:6379"``, ``"auto"``); None starts a local one with
    ``num_cpus`` CPUs (default all) and shuts it down afterwards. ``shards``: number of shards
    (default 4 per cluster CPU, at most one per example). ``tool_actors``: Ray actors hosting the
    tool backends, ``actor_gpus`` GPUs each (fractions allowed). ``task_cpus``: CPUs reserved per
    shard task (its sandbox pool has ``cfg.workers`` processes). ``max_retries``: per shard, for
    worker crashes and exceptions.
    """
    import ray

    started = time.time()
    examples, counts = select_examples(cfg)
    prepared = _prepare_output(cfg)  # usage errors (existing run, changed config) before Ray starts
    we_started = False
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **({} if address else {"num_cpus": num_cpus or os.cpu_count() or 2}))
        we_started = True
    try:
        return _drive(cfg, ray, started, examples, counts, prepared, address=address, shards=shards, tool_actors=tool_actors,
                      actor_gpus=actor_gpus, task_cpus=task_cpus, max_retries=max_retries, use_actor=use_actor)
    finally:
        if we_started:
            ray.shutdown()


def _drive(cfg: SynthConfig, ray: Any, started: float, examples: list[Example], counts: dict[str, Any],
           prepared: tuple[set[str], int], *, address: str | None, shards: int | None,
           tool_actors: int, actor_gpus: float, task_cpus: float, max_retries: int,
           use_actor: bool) -> dict[str, Any]:
    done, first_shard = prepared
    todo = [_absolute_images(ex) for ex in examples if ex.id not in done]
    n = shards or max(1, min(len(todo), int(ray.cluster_resources().get("CPU", 1)) * 4))
    parts = partition(todo, n, cfg.reuse) if todo else []
    actors: list[Any] = []
    if use_actor and todo:
        actor_cls = ray.remote(num_gpus=actor_gpus, num_cpus=0, max_restarts=-1, max_task_retries=-1)(ToolActorImpl)
        actors = [actor_cls.remote(cfg.tools) for _ in range(max(1, tool_actors))]
    remote = ray.remote(num_cpus=task_cpus, max_retries=max_retries, retry_exceptions=True)(synth_shard)
    cfg_dict = cfg.to_dict()
    pending: dict[Any, int] = {}
    numbers: list[int] = []
    for i, part in enumerate(p for p in parts if p):
        number = first_shard + i
        numbers.append(number)
        actor = actors[i % len(actors)] if actors else None
        ref = remote.options(name=f"synth_shard_{number:05d}").remote(
            cfg_dict, number, [e.to_dict() for e in part], cfg.out, actor)
        pending[ref] = number
    results: list[dict[str, Any]] = []
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    with Progress(TextColumn("[bold]synth (ray)"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                  disable=not cfg.progress) as progress:
        task = progress.add_task("synth (ray)", total=len(pending))
        while pending:
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                results.append(ray.get(ref))
                pending.pop(ref)
                progress.advance(task)
    actor_stats = [ray.get(a.stats.remote()) for a in actors]
    for a in actors:
        ray.kill(a)
    results.sort(key=lambda r: r["shard"])
    summary: dict[str, Any] = {
        "engine": "ray", "address": address or "local", "shards": numbers, "examples": len(examples),
        "already_done": len(done), "results": results, "tool_actors": actor_stats,
        "seconds": round(time.time() - started, 3)}
    if is_local(cfg.out):
        summary["report"] = _finish_local(cfg, counts, summary, started)
    return summary


def _finish_local(cfg: SynthConfig, counts: dict[str, Any], summary: dict[str, Any], started: float) -> dict[str, Any]:
    """Rebuild verified.jsonl (via RunStore), write manifest.json and report.json; return the report."""
    from vpd import synth_report
    from vpd.runs import RunStore
    from vpd.synth_manifest import build_manifest

    root = cfg.out[len("file://"):] if cfg.out.startswith("file://") else cfg.out
    store = RunStore.open(root, cfg.to_dict(), resume=True)  # repairs nothing; rebuilds verified.jsonl
    session = _merge_sessions(summary["results"], started)
    manifest = build_manifest(cfg, store, counts, None, None, started, prompt_fingerprint=session["prompt_fingerprint"])
    run_print = manifest["versions"].get("prompt_fingerprint")
    if session["prompt_fingerprint"] and run_print and session["prompt_fingerprint"] != run_print:
        # shards build their prompts themselves, so Ray can only notice a prompt change afterwards
        summary.setdefault("warnings", []).append(
            f"this session's program prompt ({session['prompt_fingerprint']}) differs from the run's "
            f"({run_print}); the sessions in manifest.json record which examples used which")
    manifest["sessions"] = manifest.get("sessions", []) + [session]
    manifest["counts"] = {**counts, "done": len(store.done_ids())}
    manifest["ray"] = {k: v for k, v in summary.items() if k != "results"}
    manifest["shard_results"] = [{k: v for k, v in r.items() if k != "session"} for r in summary["results"]]
    store.write_manifest(manifest)
    store.close()
    report = synth_report.build_report(root)
    RunStore(root).write_report(report)
    return report


def run_ray_cli(cfg: SynthConfig, **options: Any) -> int:
    """``vpd synth --engine ray``: run, print the report, return the exit code (2 on a usage error)."""
    import typer

    from vpd.runs import ConfigMismatchError, RunExistsError

    try:
        import ray  # noqa: F401
    except ImportError:
        typer.secho("--engine ray needs Ray: pip install 'vpd[ray]'", fg="red", err=True)
        return 2
    try:
        summary = run_synth_ray(cfg, **options)
    except (RunExistsError, ConfigMismatchError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        return 2
    done = [r for r in summary["results"] if not r.get("skipped")]
    typer.echo(f"ray: {len(done)} shards run ({len(summary['results']) - len(done)} already committed), "
               f"{summary['examples'] - summary['already_done']} examples in {summary['seconds']:.1f} s")
    if "report" in summary:
        from vpd.synth_report import print_report

        print_report(summary["report"])
        typer.echo(f"run written to {cfg.out} (report.json, verified.jsonl, candidates-*.jsonl)")
        for warning in summary.get("warnings", []):
            typer.secho(f"warning: {warning}", fg="yellow", err=True)
    else:
        typer.echo(f"shards committed under {cfg.out}; copy them locally and run `vpd synth-report` for the report")
    return 0


__all__ = ["run_ray_cli", "run_synth_ray", "synth_shard", "partition", "rationalize_ray", "rationalize_shard",
           "lskd_ray_mapper", "lskd_shard"]


# ---------------------------------------------------------------------------------------------
# rationalize on Ray
# ---------------------------------------------------------------------------------------------
def rationalize_shard(items: list[Any], rewriter: str, llm: str | None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Rewrite and check one shard of verified items; pure (outputs returned, nothing written)."""
    from vpd.distill.rationale import load_rewriter
    from vpd.distill.rationalize import RationalizeReport, rationalize_items

    opts = {"llm": llm} if (rewriter == "llm" and llm) else {}
    report = RationalizeReport(rewriter=rewriter, verified=len(items))
    records = rationalize_items(items, load_rewriter(rewriter, **opts), report)
    return records, report.to_dict()


def rationalize_ray(run: str | Path, *, rewriter: str = "template", llm: str | None = None,
                    address: str | None = None, shards: int | None = None, max_retries: int = 3) -> dict[str, Any]:
    """``vpd rationalize --engine ray``: shards of verified examples as Ray tasks.

    Tasks are pure (they return their records), so a retried or duplicated task cannot write twice;
    the driver writes ``rationales.jsonl`` once, atomically, in the local engine's order, and merges
    the per-shard counts into ``report.json`` under ``rationalize``.
    """
    import ray

    from vpd.distill.rationale import TraceItem
    from vpd.distill.run_io import ReadStats, merge_report, read_verified, write_jsonl

    t0 = time.time()
    run = Path(run)
    stats = ReadStats()
    verified = read_verified(run, stats)
    items = [TraceItem(example=v.example, program=v.candidate.program or "", trace=v.candidate.trace,
                       answer=v.candidate.answer) for v in verified]
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False)
    n = max(1, min(len(items), shards or int(ray.cluster_resources().get("CPU", 1)) * 2))
    chunks = [items[i::n] for i in range(n)]
    remote = ray.remote(max_retries=max_retries, retry_exceptions=True)(rationalize_shard)
    outs = ray.get([remote.remote(c, rewriter, llm) for c in chunks])
    by_id: dict[str, dict[str, Any]] = {}
    total: dict[str, Any] = {"rewriter": rewriter, "bad_lines": stats.bad_lines, "engine": "ray", "shards": n}
    for records, rep in outs:
        for rec in records:
            by_id[str((rec.get("example") or {}).get("id"))] = rec
        for key, value in rep.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in ("seconds",):
                total[key] = total.get(key, 0) + value
            elif isinstance(value, dict):
                merged = total.setdefault(key, {})
                for k, v in value.items():
                    merged[k] = merged.get(k, 0) + v
            elif isinstance(value, list):
                total.setdefault(key, []).extend(value)
            else:
                total.setdefault(key, value)
    order = [it.example.id for it in items]
    write_jsonl(run / "rationales.jsonl", [by_id[i] for i in order if i in by_id])
    total["seconds"] = round(time.time() - t0, 3)
    merge_report(run, "rationalize", total)
    return total


# ---------------------------------------------------------------------------------------------
# LSKD on Ray: the per-image work (verbalise, LLM triples) in shards; labels + critic stay global
# ---------------------------------------------------------------------------------------------
def lskd_shard(images: list[str], cfg: Any) -> tuple[list[tuple[str, Any]], list[str], tuple[list, list, dict]]:
    """Verbalise ``images`` with ``cfg.tools`` and ask ``cfg.llm`` for triples; pure (returns results)."""
    from vpd.distill.lskd import llm_triples
    from vpd.distill.verbalize import verbalise
    from vpd.tools import load

    toolbox = load(cfg.tools)
    verbs: list[tuple[str, Any]] = []
    errors: list[str] = []
    for img in images:
        try:
            v = verbalise(img, toolbox)
            verbs.append((img, v))
            errors.extend(f"{img}: {e}" for e in v.errors[:3])
        except Exception as exc:  # unreadable image: recorded, the run goes on
            errors.append(f"{img}: {type(exc).__name__}: {exc}")
    llm_out: tuple[list, list, dict] = ([], [], {})
    if cfg.llm and cfg.llm != "none":
        from vpd.programs.samplers import load_sampler

        sampler = load_sampler(cfg.llm)
        try:
            llm_out = llm_triples([v for _, v in verbs], sampler, n=cfg.llm_samples, temperature=cfg.temperature,
                                  max_tokens=cfg.max_tokens, seed=cfg.seed)
        finally:
            sampler.close()
    return verbs, errors, llm_out


def lskd_ray_mapper(*, address: str | None = None, shards: int | None = None, max_retries: int = 3):
    """A ``mapper`` for :func:`vpd.distill.lskd_run.run_lskd` that runs image shards as Ray tasks.

    Tasks are pure, so retries cannot duplicate; results are reassembled in the local image order.
    """

    def mapper(images: list[str], cfg: Any) -> tuple[list[tuple[str, Any]], list[str], tuple[list, list, dict]]:
        import ray

        if not ray.is_initialized():
            ray.init(address=address, include_dashboard=False, log_to_driver=False)
        n = max(1, min(len(images), shards or int(ray.cluster_resources().get("CPU", 1)) * 2))
        remote = ray.remote(max_retries=max_retries, retry_exceptions=True)(lskd_shard)
        outs = ray.get([remote.remote(images[i::n], cfg) for i in range(n)])
        by_image = {img: v for verbs, _, _ in outs for img, v in verbs}
        verbs = [(img, by_image[img]) for img in images if img in by_image]
        errors = [e for _, errs, _ in outs for e in errs]
        triples, rejects, counts = [], [], {}
        for _, _, (ts, rj, c) in outs:
            triples.extend(ts)
            rejects.extend(rj)
            for k, v in c.items():
                counts[k] = counts.get(k, 0) + v if isinstance(v, (int, float)) else v
        return verbs, errors, (triples, rejects, counts)

    return mapper
