"""What a synth run is set up with and what it records: :class:`SynthConfig` (every setting of
``vpd synth``) with the keys a resumed run must keep (:data:`RESUME_KEYS`, compared as
:data:`RESUME_COMPARE`), the :class:`SamplingPlan` a session derives from it and its sampler, the
per-session counters :class:`SessionStats` saved in the manifest, and :class:`SynthResult`, what
:func:`vpd.synth.run_synth` returns.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vpd.programs.sampler_base import sampler_identity
from vpd.synth_failures import DEFAULT_MAX_INFRA_FAILURES
from vpd.synth_sampling import default_llm_batch, is_remote

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


@dataclass(frozen=True, kw_only=True)
class SynthResult:
    """A finished (or stopped-and-resumable) session: the run folder and its report (report.json)."""

    out: Path
    report: dict[str, Any]
