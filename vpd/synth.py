"""The synth stage: sample k programs per question, run them, check them, keep the verified ones.

    examples ─▶ group by (question, choices) ─▶ prompt + sample k ─▶ extract + dedupe
             ─▶ run every program on every image that asks it (sandbox pool, cached tools)
             ─▶ check against the label ─▶ choose ─▶ one atomic write per example (vpd.runs)

Question-level reuse (on by default): programs see only the question and choices, so they are
sampled once per distinct (question, choices) and executed on every image asking it; LLM cost
grows with distinct questions, not examples. ``reuse=False`` samples once per example.

Without labels (``labels=False``) nothing is verified; each example's prediction is the majority
answer over its candidates (``predictions.jsonl``), i.e. programs as a zero-shot solver, and the
candidate that gave it is recorded there with its program and trace (``chosen``,
:func:`vpd.selection.majority_choice`), which ``vpd rationalize`` turns into a rationale (VPD's
path for data without labels; ``vpd synth --no-labels`` samples k = 1 by default, as the paper).

Bad input never stops a run: malformed dataset lines are counted (``bad_lines``), unreadable
images, LLM failures (refused, timed out, 429 after retries), tool backend failures, completions
without code, syntax errors, rejected programs, program errors and timeouts are each recorded as
candidates with a failure category (:mod:`vpd.synth_failures`). Infrastructure failures (LLM, tool
backend) are retryable: ``--resume`` redoes the examples they cost (``retry_failed``), and a
session stops with :class:`InfrastructureFailureError` after ``max_infra_failures`` consecutive
ones (or when all of its candidates failed so) — committed work stays, the run is resumable.
Python API: :func:`run_synth` with a :class:`SynthConfig` (both importable from here; the config and
the session records live in :mod:`vpd.synth_config`). Candidates and verdicts of one example:
:mod:`vpd.synth_candidates`; the program writer: :mod:`vpd.synth_writer`; manifest.json and the
resume checks: :mod:`vpd.synth_manifest`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from vpd.checkers import judge_from_sampler
from vpd.datasets import read_examples
from vpd.runs import RunStore
from vpd.selection import majority_choice, select
from vpd.synth_candidates import build_candidates, example_checker, image_load_error
# SynthConfig and SynthResult are re-exported: ``vpd.synth.run_synth(SynthConfig(...))`` is the public API
from vpd.synth_config import RESUME_COMPARE, RESUME_KEYS, SamplingPlan, SessionStats, SynthConfig, SynthResult
from vpd.synth_failures import FailureStreak, InfrastructureFailureError, is_retryable
from vpd.synth_manifest import build_manifest, check_prompt_unchanged, previous_llm, save_session
from vpd.synth_writer import LLMProgramWriter, Sample
from vpd.synth_sampling import ChunkSampler, SampledChunk, sampled_chunks
from vpd.types import Candidate, Example

__all__ = ["SynthConfig", "SynthResult", "run_synth", "select_examples", "question_key", "stable_seed",
           "ProgramWriter", "Executor", "SandboxExecutor"]

# --------------------------------------------------------------------------------------------
# Seams: where programs come from and where they run (real implementations: LLMProgramWriter in
# vpd.synth_writer, SandboxExecutor below; tests may pass Fake… ones)
# --------------------------------------------------------------------------------------------


class ProgramWriter(Protocol):
    def sample(self, questions: Sequence[tuple[str, tuple[str, ...] | None]], k: int, *, seed: int) -> list[list[Sample]]: ...


class Executor(Protocol):
    def run_many(self, jobs: Sequence[tuple[str, str]]) -> list[Any]: ...


class SandboxExecutor:
    """Runs ``(program, image_path)`` jobs on a :class:`vpd.sandbox.SandboxPool`."""

    def __init__(self, toolbox: Any, *, workers: int, timeout_s: float, memory_mb: int,
                 require_isolation: bool = False) -> None:
        from vpd.sandbox import SandboxPool

        # the ToolServer serialises each backend itself, so calls from many workers can batch
        self.pool = SandboxPool(workers=workers, tools=toolbox, timeout_s=timeout_s, memory_mb=memory_mb,
                                serialize_tools=False, require_isolation=require_isolation)
        self.timeout_s, self.memory_mb = timeout_s, memory_mb

    def isolation(self) -> dict[str, Any]:
        """The workers' OS isolation layers (:meth:`vpd.sandbox.Isolation.to_dict`)."""
        return self.pool.isolation().to_dict()

    def run_many(self, jobs: Sequence[tuple[str, str]]) -> list[Any]:
        return list(self.pool.map([{"source": s, "image": i, "timeout_s": self.timeout_s,
                                    "memory_mb": self.memory_mb} for s, i in jobs]))

    def close(self) -> None:
        close = getattr(self.pool, "close", None)
        if close:
            close()


# --------------------------------------------------------------------------------------------
# The stage
# --------------------------------------------------------------------------------------------


def question_key(ex: Example, reuse: bool) -> tuple[str, tuple[str, ...] | None] | str:
    return (ex.question.strip(), ex.choices) if reuse else ex.id


def stable_seed(seed: int, *parts: Any) -> int:
    h = hashlib.sha1(repr((seed,) + parts).encode()).hexdigest()
    return int(h[:8], 16)


def select_examples(cfg: SynthConfig) -> tuple[list[Example], dict[str, int]]:
    """The examples of this run (split, de-duplicated ids, limit) and input counts."""
    examples, bad = read_examples(cfg.data)
    counts = {"lines_ok": len(examples), "bad_lines": len(bad), "duplicate_ids": 0, "other_split": 0}
    seen: set[str] = set()
    out: list[Example] = []
    for ex in examples:
        if cfg.split and str(ex.metadata.get("split", cfg.split)) != cfg.split:
            counts["other_split"] += 1
            continue
        if ex.id in seen:
            counts["duplicate_ids"] += 1
            continue
        seen.add(ex.id)
        out.append(ex)
    if cfg.limit is not None:
        out = out[: cfg.limit]
    counts["examples"] = len(out)
    counts["bad_line_details"] = [dataclasses.asdict(b) for b in bad[:20]]  # type: ignore[assignment]
    return out, counts


def run_synth(cfg: SynthConfig, *, writer: ProgramWriter | None = None, executor: Executor | None = None,
              sampler: Any = None, on_example: Callable[[Example, list[Candidate]], None] | None = None,
              toolbox: Any = None) -> SynthResult:
    """Run (or resume) the synth stage; returns the run folder and its report.

    ``writer``/``executor``/``sampler`` replace the defaults built from ``cfg`` (``cfg.llm``,
    ``cfg.tools``) — for tests and for callers that keep a model loaded.
    ``toolbox`` (a :class:`~vpd.tools.Toolbox` or ``ToolServer``) replaces the one loaded from
    ``cfg.tools`` (e.g. the Ray engine's actor-backed tools); the caller owns it: it is used and
    its stats recorded, but not closed here.

    Raises :class:`InfrastructureFailureError` when the session stops for infrastructure failures
    (after committing what it did and writing the report; ``--resume`` goes on).
    """
    from vpd import synth_report

    stats = SessionStats()
    stats.llm = cfg.llm
    started = time.time()
    t0 = time.perf_counter()
    examples, counts = select_examples(cfg)
    resume = cfg.resume or cfg.retry_failed is True  # --retry-failed continues the run
    retry = cfg.retry_failed if cfg.retry_failed is not None else resume
    store = RunStore.open(cfg.out, cfg.to_dict(), resume=resume, overwrite=cfg.overwrite,
                          check_keys=RESUME_KEYS, compare_as=RESUME_COMPARE)
    stats.llm_changed_from = previous_llm(store, cfg.llm)
    redo = store.failed_ids(lambda cats, sel: is_retryable(cats, selected=sel, labels=cfg.labels)) if retry else set()
    pending = [ex for ex in examples if not store.is_done(ex.id) or ex.id in redo]
    stats.retried = sum(ex.id in redo for ex in pending)
    stats.stage_s["load"] += time.perf_counter() - t0
    stopped: InfrastructureFailureError | None = None

    owned: list[Any] = []
    owns_toolbox = toolbox is None
    try:
        if toolbox is None and (executor is None or writer is None):
            toolbox = _load_toolbox(cfg)
        if writer is None:
            if sampler is None:
                from vpd.programs.sampler_base import load_sampler
                import vpd.programs.sampler_replay  # noqa: F401  (registers replay:)

                sampler = load_sampler(cfg.llm)
                owned.append(sampler)
            writer = LLMProgramWriter(sampler, tools=toolbox.tools if toolbox else None, fewshot=cfg.fewshot,
                                      temperature=cfg.temperature, max_tokens=cfg.max_tokens, stats=stats,
                                      greedy_first=cfg.greedy_first, exclude_same_template=cfg.exclude_same_template,
                                      library=cfg.library)
        if executor is None:
            executor = SandboxExecutor(toolbox, workers=cfg.workers, timeout_s=cfg.timeout_s, memory_mb=cfg.memory_mb,
                                       require_isolation=cfg.require_isolation)
            owned.append(executor)
        judge_gen = judge_from_sampler(sampler) if (cfg.judge and sampler is not None) else None
        fingerprint = getattr(writer, "prompt_fingerprint", lambda: None)()
        check_prompt_unchanged(store, cfg, fingerprint)
        stats.prompt_fingerprint = fingerprint

        manifest = build_manifest(cfg, store, counts, toolbox, sampler, started, prompt_fingerprint=fingerprint)
        stats.sampler = manifest.get("sampler") or None  # taken now: a closed sampler cannot describe itself
        stats.isolation = manifest["isolation"] = executor.isolation() if hasattr(executor, "isolation") else None
        store.write_manifest(manifest)
        last_save = [time.perf_counter()]

        def checkpoint() -> None:  # session stats survive a kill (saved at most every 10 s)
            if time.perf_counter() - last_save[0] >= 10.0:
                save_session(store, cfg, counts, sampler, started, stats, toolbox, len(pending))
                last_save[0] = time.perf_counter()

        plan = SamplingPlan.for_sampler(cfg, sampler)
        stats.sampling = dataclasses.asdict(plan)
        warm = getattr(writer, "warm", None)
        if warm is not None:  # shared models are built here, before any sampling thread starts
            t = time.perf_counter()
            warm(list(dict.fromkeys((ex.question, ex.choices) for ex in pending)))
            stats.stage_s["load"] += time.perf_counter() - t
        try:
            _process(cfg, pending, writer, executor, store, stats, judge_gen, on_example, checkpoint, plan)
        except InfrastructureFailureError as exc:
            stopped, stats.stopped = exc, str(exc)
    finally:
        # saved before the sampler closes (a closed sampler cannot describe itself for a first manifest)
        save_session(store, cfg, counts, sampler, started, stats, toolbox, len(pending))
        for obj in owned:
            close = getattr(obj, "close", None)
            if close:
                close()
        if toolbox is not None and owns_toolbox:
            cache = getattr(toolbox, "cache", None)
            toolbox.close()  # the batching threads
            inner = getattr(toolbox, "inner", None)
            if inner is not None:
                inner.close()  # the backends
            if cache is not None and hasattr(cache, "close"):
                cache.close()
        store.close()
    report = synth_report.build_report(cfg.out)
    RunStore(cfg.out).write_report(report)
    if stopped is not None:
        raise stopped
    return SynthResult(out=Path(cfg.out), report=report)


def _load_toolbox(cfg: SynthConfig) -> Any:
    from vpd.tools import load
    from vpd.tools.cache import open_cache
    from vpd.tools.server import ToolServer

    return ToolServer(load(cfg.tools, cache=open_cache(cfg.cache), share_analyses=cfg.share_analyses),
                      max_wait_ms=5.0)


def _groups(pending: list[Example], reuse: bool) -> "OrderedDict[Any, list[Example]]":
    groups: OrderedDict[Any, list[Example]] = OrderedDict()
    for ex in pending:
        groups.setdefault(question_key(ex, reuse), []).append(ex)
    return groups


def _process(cfg: SynthConfig, pending: list[Example], writer: ProgramWriter, executor: Executor,
             store: RunStore, stats: SessionStats, judge_gen: Any,
             on_example: Callable[[Example, list[Candidate]], None] | None,
             checkpoint: Callable[[], None] = lambda: None, plan: "SamplingPlan | None" = None) -> None:
    plan = plan or SamplingPlan(llm_batch=max(1, cfg.llm_batch or 1), per_question=False, overlap=bool(cfg.overlap))
    from vpd.programs.dedupe import program_key

    groups = list(_groups(pending, cfg.reuse).values())
    progress = _progress(cfg.progress, len(pending))
    verified = 0
    streak = FailureStreak(cfg.max_infra_failures)
    with progress:
        task = progress.add_task("synth", total=len(pending), verified=0)
        chunks = [groups[g0:g0 + plan.llm_batch] for g0 in range(0, len(groups), plan.llm_batch)]
        errors_lock = threading.Lock()

        def failed(q: Any, exc: BaseException) -> list[Sample]:  # a broken sampler fails its questions, not the run
            with errors_lock:
                stats.llm_errors += cfg.k
            return [Sample(raw="", program=None, category="llm_error", error=f"{type(exc).__name__}: {exc}")
                    for _ in range(cfg.k)]

        chunk_sampler = ChunkSampler(writer.sample, cfg.k, seed_for=lambda *qs: stable_seed(cfg.seed, *qs),
                                     failed=failed, per_question=plan.per_question)

        def waited(seconds: float) -> None:
            stats.stage_s["sample"] += seconds

        def sample(chunk: list[list[Example]]) -> SampledChunk:
            return chunk_sampler([(g[0].question, g[0].choices) for g in chunk])

        for chunk, sampled in sampled_chunks(chunks, sample, overlap=plan.overlap, waited=waited):
            samples = sampled.rows

            # dedupe per question; decide which images can be read
            plans = []
            jobs: list[tuple[str, str]] = []
            for group, row, sample_s in zip(chunk, samples, sampled.seconds):
                first: dict[str, int] = {}
                dup_of: list[int | None] = []
                for i, s in enumerate(row):
                    if s.program is None:
                        dup_of.append(None)
                        continue
                    key = program_key(s.program) if cfg.dedupe else str(i)
                    dup_of.append(first.get(key))
                    first.setdefault(key, i)
                for ex in group:
                    image_error = image_load_error(ex.image)
                    slots: dict[int, int] = {}
                    if image_error is None:
                        for i, s in enumerate(row):
                            if s.program is not None and dup_of[i] is None:
                                slots[i] = len(jobs)
                                jobs.append((s.program, ex.image))
                    else:
                        stats.image_errors += 1
                    plans.append((ex, row, dup_of, slots, image_error, sample_s))
            t = time.perf_counter()
            results = executor.run_many(jobs) if jobs else []
            stats.stage_s["execute"] += time.perf_counter() - t
            stats.programs_executed += len(jobs)

            for ex, row, dup_of, slots, image_error, sample_s in plans:
                t = time.perf_counter()
                checker = example_checker(ex, cfg, judge_gen)
                cands, extra = build_candidates(ex, row, dup_of, slots, results, image_error, checker, cfg, sample_s)
                chosen, majority = None, None
                prediction, votes = None, {}
                if cfg.labels:
                    pick = select(cands, cfg.select, lambda a: checker.normalize(a, ex))
                    chosen = pick.index if pick is not None else None
                else:
                    prediction, votes, majority = majority_choice(cands, lambda a: checker.normalize(a, ex))
                stats.stage_s["check"] += time.perf_counter() - t
                t = time.perf_counter()
                store.write_example(ex, cands, selected=chosen, prediction=prediction, votes=votes,
                                    with_prediction=not cfg.labels, extra=extra, replace=store.is_done(ex.id),
                                    chosen=majority)
                stats.stage_s["write"] += time.perf_counter() - t
                stats.examples_written += 1
                verified += chosen is not None
                if on_example is not None:
                    on_example(ex, cands)
                progress.update(task, advance=1, verified=verified)
                streak.add(cands)  # raises after N consecutive infrastructure failures (all committed)
            checkpoint()
    streak.finish()


class _NullProgress:
    def __enter__(self) -> "_NullProgress":
        return self

    def __exit__(self, *a: object) -> None:
        pass

    def add_task(self, *a: Any, **k: Any) -> int:
        return 0

    def update(self, *a: Any, **k: Any) -> None:
        pass


def _progress(enabled: bool, total: int) -> Any:
    if not enabled:
        return _NullProgress()
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    return Progress(TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
                    TextColumn("verified {task.fields[verified]}"), TimeElapsedColumn(), TimeRemainingColumn())
