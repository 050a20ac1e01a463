"""LLM samplers: the common interface, the ``SAMPLERS`` registry and ``load_sampler(spec)``.

Spec strings (``kind:rest``; a bare ``kind`` when it needs no argument):

=============================  ===============================================================
``gemma``                      the packaged Gemma 3 270M base model, in-process (offline default)
``openai:MODEL@BASE_URL``      an OpenAI-compatible server, ``/v1/completions`` (vLLM, llama.cpp …)
``openai-chat:MODEL@BASE_URL`` the same server's ``/v1/chat/completions``
``openai:MODEL``               the OpenAI API itself (``OPENAI_BASE_URL`` or api.openai.com)
``transformers:PATH``          a local causal-LM folder, in-process
``llamacpp:PATH.gguf``         llama.cpp in-process (needs ``llama-cpp-python``)
=============================  ===============================================================

Options of the sampler's constructor follow a ``?`` as ``key=value`` pairs joined by ``&``, so every
command that takes ``--llm`` can set them: ``openai:qwen@http://h:8000/v1?concurrency=16&context_tokens=8192``,
``gemma?batch_size=4&dtype=bfloat16``. Values are JSON where they parse (``16``, ``0.5``, ``true``,
``null``) and strings otherwise. Secrets are refused here (they would land in run manifests): an
API key comes from the environment (``api_key_env=NAME`` names the variable).

A sampler never raises out of :meth:`Sampler.generate`: a failed request yields completions with
``error`` set, so a run goes on and records the failure.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import importlib
import json
import math
import re
from dataclasses import dataclass
from typing import Any, Callable, Sequence

from vpd.registry import Registry


@dataclass(frozen=True, kw_only=True)
class Completion:
    """One sampled continuation. Token counts are the model's tokens (estimates where the server
    does not report them); ``error`` is set (and ``text`` empty) when the request failed.

    ``mean_logprob`` is the model's own score of the completion: the mean natural-log probability
    of its generated tokens under the untempered model (``vpd synth --select score``); None where
    the backend gave none."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None
    mean_logprob: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None


class Sampler(ABC):
    """Base class of every sampler. Subclasses implement :meth:`generate`."""

    #: The registry name of the sampler kind (``openai``, ``transformers`` …).
    kind: str = ""

    def __init__(self, *, name: str) -> None:
        self.name = name

    #: True when :meth:`generate_k` serves a greedy candidate and the sampled ones in one request.
    mixes_greedy_in_one_request: bool = False

    #: True when calls only wait on a server (no local compute): they may run from several threads
    #: at once and overlap with program execution (``vpd synth`` then keeps questions in flight).
    remote: bool = False

    @abstractmethod
    def generate(self, prompts: Sequence[str], *, n: int = 1, temperature: float = 0.0,
                 max_tokens: int = 256, stop: Sequence[str] | None = None,
                 seed: int | None = None) -> list[list[Completion]]:
        """``n`` completions for each prompt (``temperature == 0`` is greedy), in prompt order.

        ``max_tokens`` bounds each completion; generation ends at the first ``stop`` string,
        which is not part of the returned text. ``seed`` makes sampling reproducible where the
        backend allows it.
        """

    def generate_k(self, prompts: Sequence[str], *, k: int, temperature: float, greedy_first: bool = False,
                   max_tokens: int = 256, stop: Sequence[str] | None = None,
                   seed: int | None = None) -> list[list[Completion]]:
        """``k`` candidates per prompt; with ``greedy_first`` (and ``temperature > 0``) the first is
        greedy and the other ``k - 1`` sampled. This default makes two :meth:`generate` calls
        (seeds ``seed`` and ``seed + 1``); in-process samplers override it with one batch."""
        if k <= 0:
            return [[] for _ in prompts]
        out: list[list[Completion]] = [[] for _ in prompts]
        n_sampled = k
        if greedy_first and temperature > 0:
            for i, comps in enumerate(self.generate(prompts, n=1, temperature=0.0, max_tokens=max_tokens,
                                                    stop=stop, seed=seed)):
                out[i] += comps[:1]
            n_sampled = k - 1
        if n_sampled > 0:
            sampled = self.generate(prompts, n=n_sampled, temperature=temperature, max_tokens=max_tokens,
                                    stop=stop, seed=None if seed is None else seed + 1)
            for i, comps in enumerate(sampled):
                out[i] += comps[:n_sampled]
        return out

    def warm(self, prefix: str) -> None:
        """Hint: many later prompts start with ``prefix`` (e.g. the API section). Samplers with a
        prompt cache precompute it; the default does nothing."""

    def count_tokens(self, text: str) -> int:
        """Number of tokens ``text`` takes in this model's prompt (an estimate without a tokenizer)."""
        return estimate_tokens(text)

    @property
    def context_tokens(self) -> int | None:
        """The model's context length in tokens, when known."""
        return None

    def describe(self) -> dict[str, Any]:
        """Plain-data description for run manifests (never contains secrets)."""
        return {"kind": self.kind, "name": self.name, "context_tokens": self.context_tokens}

    def close(self) -> None:
        """Release models / connections (idempotent)."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate (~3.5 characters per token for English text and code)."""
    return max(1, math.ceil(len(text) / 3.5)) if text else 0


def mean_logprob(logprobs: Sequence[float | None] | None) -> float | None:
    """The mean of per-token log-probabilities (None entries, e.g. a server's first token, are
    skipped); None when there are none or the mean is not finite."""
    vals = [float(x) for x in (logprobs or ()) if x is not None]
    if not vals:
        return None
    m = sum(vals) / len(vals)
    return m if math.isfinite(m) else None


def truncate_at_stop(text: str, stop: Sequence[str] | None) -> tuple[str, bool]:
    """``text`` cut before the earliest stop string; the flag says whether one was found."""
    cut = len(text)
    for s in stop or ():
        if s:
            i = text.find(s)
            if i != -1:
                cut = min(cut, i)
    return text[:cut], cut < len(text)


#: name -> factory(rest_of_spec: str, **options) -> Sampler
SAMPLERS: Registry[Callable[..., Sampler]] = Registry("sampler")

#: Modules that register samplers; imported lazily by :func:`load_sampler`.
_SAMPLER_MODULES = ("vpd.programs.sampler_openai", "vpd.programs.sampler_transformers",
                    "vpd.programs.sampler_llamacpp", "vpd.programs.sampler_replay",
                    "vpd.programs.sampler_balanced")


def _import_samplers() -> None:
    for mod in _SAMPLER_MODULES:
        importlib.import_module(mod)


#: Option names refused in a spec: a secret there would be written into run manifests and logs.
SECRET_OPTION_RE = re.compile(r"(^|_)(api_?key|key|token|secret|password|passwd)$", re.IGNORECASE)
_OPTIONS_RE = re.compile(r"^[A-Za-z_]\w*=[^&]*(&[A-Za-z_]\w*=[^&]*)*$")


class SamplerOptionError(ValueError):
    """A sampler option that is unknown, malformed or a secret."""


def split_options(spec: str) -> tuple[str, dict[str, Any]]:
    """``"gemma?batch_size=4&dtype=bfloat16"`` -> ``("gemma", {"batch_size": 4, "dtype": "bfloat16"})``.

    The options are the part after the last ``?`` when it is ``key=value`` pairs joined by ``&``
    (anything else after a ``?`` stays in the spec). Values are JSON where they parse, else strings.
    Raises :class:`SamplerOptionError` for a secret-like name (``api_key``, ``token`` …).
    """
    base, sep, tail = spec.rpartition("?")
    if not sep or not _OPTIONS_RE.match(tail):
        return spec, {}
    options: dict[str, Any] = {}
    for pair in tail.split("&"):
        key, _, raw = pair.partition("=")
        if SECRET_OPTION_RE.search(key):
            raise SamplerOptionError(f"sampler option {key!r} looks like a secret: it would be recorded in run "
                                     "manifests. Put it in an environment variable (api_key_env=NAME names it).")
        try:
            options[key] = json.loads(raw)
        except ValueError:
            options[key] = raw
    return base, options


def sampler_identity(spec: str) -> str:
    """The spec without its options: which model a run used (options such as ``concurrency`` or
    ``timeout_s`` may change between sessions of a resumed run)."""
    return split_options(spec.strip())[0] if isinstance(spec, str) else str(spec)


def parse_spec(spec: str) -> tuple[str, str]:
    """``"openai:gpt-4o@http://h/v1"`` -> ``("openai", "gpt-4o@http://h/v1")``; ``"gemma"`` -> ``("gemma", "")``.

    Options (``?key=value&…``) are not part of the result; see :func:`split_options`."""
    spec = split_options(spec.strip())[0].strip()
    if not spec:
        raise ValueError("empty sampler spec (try 'gemma', 'openai:MODEL@URL', 'transformers:PATH')")
    kind, _, rest = spec.partition(":")
    return kind.strip(), rest.strip()


def load_sampler(spec: str | Sampler, **options: Any) -> Sampler:
    """Build a sampler from its spec string (see the module docstring); the spec's own options and
    then ``options`` (which win) go to its factory.

    An unknown kind fails with "did you mean …"; an option the sampler does not take fails with a
    :class:`SamplerOptionError` naming it.
    """
    if isinstance(spec, Sampler):
        return spec
    _import_samplers()
    _, spec_options = split_options(spec.strip())
    kind, rest = parse_spec(spec)
    factory = SAMPLERS.get(kind)
    merged = {**spec_options, **options}
    try:
        return factory(rest, **merged)
    except TypeError as exc:
        bad = re.search(r"unexpected keyword argument '(\w+)'", str(exc))
        if bad is None:
            raise
        raise SamplerOptionError(f"sampler {kind!r} has no option {bad.group(1)!r} "
                                 f"(given: {', '.join(sorted(merged)) or 'none'})") from None
