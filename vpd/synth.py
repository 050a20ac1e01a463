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
Python API: :func:`run_synth` with a :class:`SynthConfig`. Candidates and verdicts of one example:
:mod:`vpd.synth_candidates`; the program writer: :mod:`vpd.synth_writer`.
"""

from __future__ import annotations

import dataclasses
import hashlib
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Protocol, Sequence

from vpd.checkers import checker_versions, judge_from_sampler
from vpd.datasets import read_examples
from vpd.programs.sampler_base import sampler_identity
from vpd.runs import RunStore
from vpd.selection import majority_choice, select
from vpd.synth_candidates import build_candidates, example_checker, image_load_error
from vpd.synth_failures import DEFAULT_MAX_INFRA_FAILURES, FailureStreak, InfrastructureFailureError, is_retryable
from vpd.synth_writer import LLMProgramWriter, Sample
from vpd.synth_sampling import (ChunkSampler, SampledChunk, default_llm_batch, is_remote,
                                sampled_chunks)
from vpd.types import Candidate, Example

#: Config keys that must match when resuming a run.
RESUME_KEYS = ("data", "llm", "tools", "k", "reuse", "labels", "fewshot", "seed", "temperature",
               "select", "split", "limit", "max_tokens", "checker", "greedy_first")


def llm_identity(spec: str) -> str:
    """Which model a run uses, for ``--resume``: the spec without its options and, for an
    OpenAI-compatible endpoint, without its address (``openai:m@http://a/v1`` and
    ``openai-completions:m@http://b/v1`` are the same model ``openai-completions:m``)."""
    from vpd.programs.sampler_openai import openai_model_identity

    return openai_model_identity(spec) or sampler_identity(spec)


#: A resumed run may change the sampler's options (``?concurrency=…``) and an endpoint's address,
#: not its model; each session records the spec it used (``sessions[i].llm``).
RESUME_COMPARE = {"llm": llm_identity}


@dataclass(frozen=True, kw_only=True)
class SynthConfig:
    """Everything ``vpd synth`` needs. Times in seconds, memory in MiB."""

    data: str
    out: str
    llm: str = "gemma"
    tools: str = "shapes"
    k: int = 5
    resume: bool = False
    overwrite: bool = False
    limit: int | None = None
    split: str | None = None
    reuse: bool = True
    labels: bool = True
    fewshot: str = "nearest"  # nearest | fixed
    exclude_same_template: bool = False  # leave-template-out few-shot examples (part of the prompt fingerprint)
    library: str | None = None  # a few-shot program library folder; None = the packaged one
    workers: int = 2
    seed: int = 0
    temperature: float = 0.7
    select: str = "first"  # first | shortest | majority | score (vpd.selection)
    max_tokens: int = 256
    timeout_s: float = 5.0
    memory_mb: int = 512
    cache: str | None = "default"  # default | memory | off | PATH
    checker: str | None = None  # a checker or benchmark name; None = infer per example
    judge: bool = False
    greedy_first: bool = True  # candidate 0 greedy, the other k-1 sampled
    llm_batch: int | None = None  # questions per chunk; None = the sampler's concurrency if remote, else 1
    overlap: bool | None = None  # sample the next chunk while this one runs; None = on for remote samplers
    dedupe: bool = True  # run each distinct (AST-normalised) program once per image; False runs every candidate
    share_analyses: bool = True  # cache a backend's per-image analysis, so new queries on an image reuse it
    allow_prompt_change: bool = False  # --resume even if the prompt fingerprint differs from the run's
    retry_failed: bool | None = None  # redo examples that infrastructure failures cost; None = with --resume
    max_infra_failures: int = DEFAULT_MAX_INFRA_FAILURES  # consecutive LLM/tool-backend failures that stop; 0 never
    require_isolation: bool = False  # refuse to run unless every sandbox OS layer is active (vpd.sandbox.isolation)
    recipe: str | None = None  # the `--recipe` whose settings filled k/temperature/judge/select (vpd.synth_recipes)
    progress: bool = True

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


# --------------------------------------------------------------------------------------------
# Seams: where programs come from and where they run (real implementations: LLMProgramWriter in
# vpd.synth_writer, SandboxExecutor below; tests may pass Fake… ones)
# --------------------------------------------------------------------------------------------


class ProgramWriter(Protocol):
    def sample(self, questions: Sequence[tuple[str, tuple[str, ...] | None]], k: int, *, seed: int) -> list[list[Sample]]: ...


class Executor(Protocol):
    def run_many(self, jobs: Sequence[tuple[str, str]]) -> list[Any]: ...


@dataclass(frozen=True)
class SamplingPlan:
    """How a session asks for programs (see :mod:`vpd.synth_sampling`): ``llm_batch`` questions per
    chunk, each its own call in flight together (``per_question``, remote samplers) or one batched
    call, and whether the next chunk is sampled while the current one runs (``overlap``)."""

    llm_batch: int
    per_question: bool
    overlap: bool

    @classmethod
    def for_sampler(cls, cfg: "SynthConfig", sampler: Any) -> "SamplingPlan":
        remote = is_remote(sampler)
        batch = cfg.llm_batch if cfg.llm_batch else default_llm_batch(sampler)
        return cls(llm_batch=max(1, int(batch)), per_question=remote,
                   overlap=remote if cfg.overlap is None else bool(cfg.overlap))


@dataclass
class SessionStats:
    """Counters of one ``run_synth`` call (saved per session in the manifest)."""

    llm_requests: int = 0
    llm_completions: int = 0
    llm_errors: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    programs_executed: int = 0
    stage_s: dict[str, float] = field(default_factory=lambda: {"load": 0.0, "sample": 0.0, "execute": 0.0,
                                                                 "check": 0.0, "write": 0.0})
    examples_written: int = 0
    image_errors: int = 0
    prompt_fingerprint: str | None = None  # the prompts this session sent (see LLMProgramWriter)
    sampling: dict[str, Any] = field(default_factory=dict)  # the SamplingPlan used
    llm: str = ""  # the --llm spec of this session (an endpoint's address/options may change on resume)
    llm_changed_from: str | None = None  # the previous session's spec, when this one differs
    retried: int = 0  # committed examples redone (their infrastructure failures retried)
    stopped: str | None = None  # why the session stopped early (InfrastructureFailureError), else None
    sampler: dict[str, Any] | None = None  # the sampler's settings (Sampler.describe), taken at the start
    isolation: dict[str, Any] | None = None  # the sandbox's OS layers (Isolation.to_dict); None: no sandbox

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


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


@dataclass(frozen=True, kw_only=True)
class SynthResult:
    out: Path
    report: dict[str, Any]


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
    stats.llm_changed_from = _previous_llm(store, cfg.llm)
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
        _check_prompt_unchanged(store, cfg, fingerprint)
        stats.prompt_fingerprint = fingerprint

        manifest = _manifest(cfg, store, counts, toolbox, sampler, started, prompt_fingerprint=fingerprint)
        stats.sampler = manifest.get("sampler") or None  # taken now: a closed sampler cannot describe itself
        stats.isolation = manifest["isolation"] = executor.isolation() if hasattr(executor, "isolation") else None
        store.write_manifest(manifest)
        last_save = [time.perf_counter()]

        def checkpoint() -> None:  # session stats survive a kill (saved at most every 10 s)
            if time.perf_counter() - last_save[0] >= 10.0:
                _save_session(store, cfg, counts, sampler, started, stats, toolbox, len(pending))
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
        _save_session(store, cfg, counts, sampler, started, stats, toolbox, len(pending))
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


def _previous_llm(store: RunStore, llm: str) -> str | None:
    """The spec of the run's last session (or first config), when it differs from ``llm``."""
    manifest = store.read_manifest()
    sessions = manifest.get("sessions") or []
    prev = sessions[-1].get("llm") if sessions else None
    prev = prev or (manifest.get("config") or {}).get("llm")
    return prev if prev and prev != llm else None


def _save_session(store: RunStore, cfg: SynthConfig, counts: dict[str, Any], sampler: Any, started: float,
                  stats: SessionStats, toolbox: Any, pending: int) -> None:
    """Write this session's counters into the manifest (replacing its earlier checkpoint)."""
    tstats: dict[str, Any] = dict(toolbox.stats) if toolbox is not None else {}
    cache = getattr(toolbox, "cache", None)
    if cache is not None and hasattr(cache, "stats"):
        tstats["cache"] = cache.stats().to_dict()
    if toolbox is not None and hasattr(toolbox, "batch_stats"):
        tstats["batches"] = toolbox.batch_stats()
    session = {"started": started, "finished": time.time(), **stats.to_dict(), "toolbox": tstats,
               "pending_at_start": pending}
    manifest = store.read_manifest() or _manifest(cfg, store, counts, None, sampler, started)
    sessions = [s for s in manifest.get("sessions", []) if s.get("started") != started]
    manifest["sessions"] = sessions + [session]
    manifest["counts"] = {**counts, "done": len(store.done_ids())}
    store.write_manifest(manifest)


def _load_toolbox(cfg: SynthConfig) -> Any:
    from vpd.tools import load
    from vpd.tools.cache import open_cache
    from vpd.tools.server import ToolServer

    return ToolServer(load(cfg.tools, cache=open_cache(cfg.cache), share_analyses=cfg.share_analyses),
                      max_wait_ms=5.0)


def _check_prompt_unchanged(store: RunStore, cfg: SynthConfig, fingerprint: str | None) -> None:
    """On ``--resume``: refuse to go on with prompts that differ from the run's first session's
    (an edited API docstring or library example), unless ``cfg.allow_prompt_change``."""
    old = (store.read_manifest().get("versions") or {}).get("prompt_fingerprint")
    if not cfg.resume or cfg.allow_prompt_change or fingerprint is None or old is None or old == fingerprint:
        return
    from vpd.runs import ConfigMismatchError

    raise ConfigMismatchError(
        f"cannot resume: the program prompt changed since this run started ({old} -> {fingerprint}: the "
        "tool API section or the few-shot library differs). Finish it with the vpd version that started it, "
        "or pass --allow-prompt-change to mix both (each session records its fingerprint).")


def _manifest(cfg: SynthConfig, store: RunStore, counts: dict[str, Any], toolbox: Any, sampler: Any,
              started: float, *, prompt_fingerprint: str | None = None) -> dict[str, Any]:
    import vpd

    old = store.read_manifest()
    versions: dict[str, Any] = {"vpd": getattr(vpd, "__version__", ""), "checkers": checker_versions()}
    try:
        from vpd.programs.prompt import PROMPT_VERSION

        versions["prompt"] = PROMPT_VERSION
    except ImportError:
        pass
    # the first session's fingerprint stays the run's (sessions record their own)
    fp = (old.get("versions") or {}).get("prompt_fingerprint") or prompt_fingerprint
    if fp:
        versions["prompt_fingerprint"] = fp
    return {
        "stage": "synth", "config": cfg.to_dict(), "versions": versions,
        "tools": toolbox.describe() if toolbox is not None else old.get("tools", {}),
        "sampler": sampler.describe() if hasattr(sampler, "describe") else old.get("sampler", {}),
        "counts": {**counts, "done": len(store.done_ids())},
        "created": old.get("created", started), "sessions": old.get("sessions", []),
    }


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
