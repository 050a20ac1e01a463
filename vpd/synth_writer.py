"""The default program writer of ``vpd synth``: prompt + sampler + code extraction.

:class:`LLMProgramWriter` builds one prompt per distinct question (:mod:`vpd.programs.prompt`),
asks the sampler for ``k`` completions and extracts a program from each (:class:`Sample`).
It is called from several threads at once for a remote sampler's questions in flight, so the
shared models behind the prompts are built first, in one thread (:meth:`LLMProgramWriter.warm`).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Iterable, Sequence

if TYPE_CHECKING:
    from vpd.synth_config import SessionStats


@dataclass(frozen=True, kw_only=True)
class Sample:
    """One sampled completion and the program extracted from it."""

    raw: str
    program: str | None
    category: str = "none"  # none | no_code | syntax | llm_error
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0
    mean_logprob: float | None = None  # the LLM's own score (mean token log-probability), if the sampler gave one


class LLMProgramWriter:
    """Prompt + sampler + extraction (:mod:`vpd.programs`), one prompt per distinct question.

    ``prompter(question, choices) -> vpd.programs.Prompt`` replaces the default prompt builder
    (tests). With ``greedy_first`` the first of the k candidates is greedy. With
    ``exclude_same_template`` no few-shot example written for the question's own template is shown
    (leave-template-out, :func:`vpd.programs.retrieval.same_template`). ``library`` is a few-shot
    library folder other than the packaged one (its contents are part of the prompt fingerprint).
    """

    def __init__(self, sampler: Any, *, tools: Iterable[str] | None, fewshot: str, temperature: float,
                 max_tokens: int, stats: "SessionStats", greedy_first: bool = True,
                 prompter: Callable[[str, tuple[str, ...] | None], Any] | None = None,
                 exclude_same_template: bool = False, library: str | None = None) -> None:
        self.sampler = sampler
        self.tools = list(tools) if tools is not None else None
        self.fewshot = fewshot
        self.temperature = temperature
        self.max_tokens = max_tokens
        self.greedy_first = greedy_first
        self.exclude_same_template = exclude_same_template
        self.library = library  # a few-shot library folder; None = the packaged one
        self.stats = stats
        self._lock = threading.Lock()
        self._prompter = prompter or self._build_prompt

    def _build_prompt(self, question: str, choices: tuple[str, ...] | None) -> Any:
        from vpd.programs.prompt import build_program_prompt

        ctx = getattr(self.sampler, "context_tokens", None)
        budget = ctx - self.max_tokens if ctx else None
        return build_program_prompt(question, choices, tools=self.tools, mode=self.fewshot, budget_tokens=budget,
                                    count_tokens=getattr(self.sampler, "count_tokens", None),
                                    exclude_same_template=self.exclude_same_template, library=self.library)

    def warm(self, questions: Sequence[tuple[str, tuple[str, ...] | None]]) -> None:
        """Build the shared prompt builder and its models (MiniLM, the library matrix) and embed
        ``questions`` now, in the calling thread: ``run_synth`` calls this before any sampling
        thread starts, so no thread ever builds a model (a no-op with a custom ``prompter``)."""
        if self._prompter != self._build_prompt:
            return
        from vpd.programs.prompt import warm_prompts

        warm_prompts(questions, self.tools, mode=self.fewshot, count_tokens=getattr(self.sampler, "count_tokens", None),
                     library=self.library)

    def prompt_fingerprint(self) -> str | None:
        """What the prompts are made of (see :func:`vpd.programs.prompt.prompt_fingerprint`; ``+lto``
        marks leave-template-out, so a resumed run cannot switch it); None with a custom ``prompter``."""
        if self._prompter != self._build_prompt:
            return None
        from vpd.programs.prompt import prompt_fingerprint

        return prompt_fingerprint(self.tools, self.library) + ("+lto" if self.exclude_same_template else "")

    def sample(self, questions: Sequence[tuple[str, tuple[str, ...] | None]], k: int, *, seed: int) -> list[list[Sample]]:
        """``k`` samples per question; safe to call from several threads (counters under a lock)."""
        from vpd.programs.sampling import sample_programs

        prompts = [self._prompter(q, c) for q, c in questions]
        # a replay sampler serves recorded completions in order: a separate greedy call would repeat one
        greedy = (self.greedy_first and k > 1 and self.temperature > 0
                  and getattr(self.sampler, "kind", "") != "replay")
        rows = sample_programs(self.sampler, prompts, k, self.temperature, max_tokens=self.max_tokens,
                               seed=seed, greedy_first=greedy)
        one_request = getattr(self.sampler, "mixes_greedy_in_one_request", False)
        per_prompt = 2 if greedy and not one_request else 1
        counts = {"llm_requests": len(prompts) * per_prompt, "prompt_tokens": 0, "completion_tokens": 0,
                  "llm_completions": 0, "llm_errors": 0}
        out: list[list[Sample]] = []
        for row in rows:
            # every completion carries its prompt's size; the prompt is sent once per request
            counts["prompt_tokens"] += per_prompt * max((int(sp.prompt_tokens or 0) for sp in row[:k]), default=0)
            samples = [self._one(sp, counts) for sp in row[:k]]
            while len(samples) < k:
                counts["llm_errors"] += 1
                samples.append(Sample(raw="", program=None, category="llm_error",
                                      error="sampler returned too few completions"))
            out.append(samples)
        with self._lock:
            for key, value in counts.items():
                setattr(self.stats, key, getattr(self.stats, key) + value)
        return out

    @staticmethod
    def _one(sp: Any, counts: dict[str, int]) -> Sample:
        counts["llm_completions"] += 1
        counts["completion_tokens"] += int(sp.completion_tokens or 0)
        if sp.status == "llm_error":
            counts["llm_errors"] += 1
        ok = sp.status == "ok" and sp.program is not None
        return Sample(raw=sp.raw_completion or "", program=sp.program if ok else None,
                      category="none" if ok else sp.status, error=None if ok else (sp.error or sp.detail),
                      prompt_tokens=sp.prompt_tokens, completion_tokens=sp.completion_tokens,
                      mean_logprob=getattr(sp, "mean_logprob", None))
