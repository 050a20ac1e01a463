"""Sample candidate programs for prompts: the sampler call, code extraction, the raw text kept.

>>> sampler = load_sampler("gemma")                                   # doctest: +SKIP
>>> prompt = build_program_prompt("How many red cubes are there?", tools=tb.tools)   # doctest: +SKIP
>>> [[c.program for c in cands] for cands in sample_programs(sampler, [prompt], k=4, temperature=0.7)]  # doctest: +SKIP
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

from vpd.programs.extract import extract_program
from vpd.programs.prompt import CODE_PREFIX, PROMPT_VERSION, STOP, Prompt
from vpd.programs.sampler_base import Completion, Sampler


@dataclass(frozen=True, kw_only=True)
class SampledProgram:
    """One candidate. ``program`` is None when the completion failed or held no usable code.

    ``status``: ``ok`` | ``llm_error`` (the sampler recorded ``error``) | ``no_code`` | ``syntax``.
    ``raw_completion`` is exactly what the model wrote (always kept). ``temperature`` is what it
    was sampled at (0 for the greedy candidate).
    """

    program: str | None
    raw_completion: str
    status: str
    detail: str = ""
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    truncated: bool = False
    temperature: float = 0.0
    prompt_version: str = PROMPT_VERSION
    mean_logprob: float | None = None  # the LLM's score of the completion (Completion.mean_logprob)


def to_sampled(c: Completion, *, prefix: str = CODE_PREFIX, temperature: float = 0.0) -> SampledProgram:
    """Extract the program from one completion."""
    if c.error is not None:
        return SampledProgram(program=None, raw_completion=c.text, status="llm_error", detail=c.error,
                              prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens,
                              error=c.error, temperature=temperature, mean_logprob=c.mean_logprob)
    ex = extract_program(c.text, prefix=prefix)
    return SampledProgram(program=ex.program, raw_completion=c.text, status=ex.status, detail=ex.detail,
                          prompt_tokens=c.prompt_tokens, completion_tokens=c.completion_tokens,
                          truncated=ex.truncated, temperature=temperature, mean_logprob=c.mean_logprob)


def sample_programs(sampler: Sampler, prompts: Sequence[Prompt | str], k: int, temperature: float = 0.7, *,
                    max_tokens: int = 256, seed: int | None = None,
                    greedy_first: bool = False) -> list[list[SampledProgram]]:
    """``k`` candidates per prompt, in prompt order. Never raises for a failed LLM request.

    With ``greedy_first`` the first candidate is greedy (temperature 0) and the other ``k - 1``
    are sampled at ``temperature``. Plain-string prompts use :data:`CODE_PREFIX` and :data:`STOP`.
    """
    if not prompts or k <= 0:
        return [[] for _ in prompts]
    texts = [p.text if isinstance(p, Prompt) else p for p in prompts]
    prefixes = [p.prefix if isinstance(p, Prompt) else CODE_PREFIX for p in prompts]
    stop = list(dict.fromkeys(s for p in prompts for s in (p.stop if isinstance(p, Prompt) else STOP)))
    for shared in dict.fromkeys(p.cache_prefix for p in prompts if isinstance(p, Prompt) and p.cache_prefix):
        sampler.warm(shared)
    greedy = greedy_first and temperature > 0
    rows = sampler.generate_k(texts, k=k, temperature=temperature, greedy_first=greedy, max_tokens=max_tokens,
                              stop=stop, seed=seed)
    out: list[list[SampledProgram]] = []
    for i, comps in enumerate(rows):
        out.append([to_sampled(c, prefix=prefixes[i], temperature=0.0 if greedy and j == 0 else temperature)
                    for j, c in enumerate(comps[:k])])
    return out
