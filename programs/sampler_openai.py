"""Sampler for any OpenAI-compatible server (OpenAI, vLLM, Ollama, llama.cpp server, …).

* ``openai:MODEL@BASE_URL`` uses ``/v1/completions`` (right for base models such as the offline
  Gemma served by llama.cpp); ``openai-chat:MODEL@BASE_URL`` uses ``/v1/chat/completions`` with the
  prompt as one user message. Without ``@BASE_URL`` the ``openai`` package's default applies
  (``OPENAI_BASE_URL`` or api.openai.com).
* The key comes from ``$OPENAI_API_KEY`` (``"EMPTY"`` when unset, which local servers accept); it
  is never logged nor written into :meth:`describe`.
* ``n=k`` is one request per prompt; servers that ignore ``n`` get more requests until ``n``
  completions are in. Requests run concurrently on asyncio (``AsyncOpenAI``) with at most
  ``concurrency`` in flight.
* 429, 5xx, timeouts and connection errors are retried with exponential backoff and jitter
  (``backoff_s * 2**attempt``, capped at ``backoff_max_s``; a ``Retry-After`` header is honoured
  up to that cap). After ``max_retries`` retries — or at once for other errors (400, 401 …) — the
  prompt's completions carry ``error`` and ``generate`` returns normally.
* Each request asks for the sampled tokens' log-probabilities (``logprobs``; off with
  ``?logprobs=false`` for a server that refuses them) and each completion carries their mean
  (``Completion.mean_logprob``, the score ``vpd synth --select score`` ranks by); a server that
  returns none leaves it None.
"""

from __future__ import annotations

import asyncio
import os
import random
import re
import threading
from typing import Any, Sequence

from vpd.programs.sampler_base import SAMPLERS, Completion, Sampler, estimate_tokens, mean_logprob, truncate_at_stop

#: In chat mode only stop strings that start the next few-shot example are kept: a chat model
#: answers with a whole (often fenced) program, which completion stops such as ``"\ndef "`` or
#: ``"\n```"`` would cut before its code.
CHAT_STOP_PREFIX = "\n# Question"

#: The most stop strings the OpenAI API accepts; further ones are applied on our side. Servers that
#: take more (vLLM, ``vpd llm serve``) stop earlier with ``server_stops=N`` (fewer wasted tokens).
MAX_SERVER_STOPS = 4


def parse_openai_spec(rest: str) -> tuple[str, str | None]:
    """``"MODEL@http://host:8000/v1"`` -> ``("MODEL", "http://host:8000/v1")``; ``"MODEL"`` -> ``("MODEL", None)``."""
    m = re.match(r"^(.*?)@((?:https?://).*)$", rest)
    model, url = (m.group(1), m.group(2)) if m else (rest, None)
    if not model:
        raise ValueError("openai sampler spec needs a model name: openai:MODEL@BASE_URL")
    return model, url


def openai_model_identity(spec: str) -> str | None:
    """``"openai:m@http://a/v1?concurrency=4"`` -> ``"openai-completions:m"``: the mode and model of an
    OpenAI-compatible spec without address and options (a resumed run may move to another
    endpoint serving the same model); None for other samplers' specs."""
    from vpd.programs.sampler_base import parse_spec

    try:
        kind, rest = parse_spec(spec)
    except (ValueError, AttributeError):
        return None
    mode = {"openai": "completions", "openai-completions": "completions", "openai-chat": "chat"}.get(kind)
    if mode is None:
        return None
    try:
        model, _ = parse_openai_spec(rest)
    except ValueError:
        return None
    return f"openai-{mode}:{model}"


class OpenAISampler(Sampler):
    """Completions or chat completions from an OpenAI-compatible HTTP server."""

    kind = "openai"
    #: Calls only wait on the server: several may be in flight from different threads.
    remote = True

    def __init__(self, model: str, base_url: str | None = None, *, mode: str = "completions",
                 concurrency: int = 8, timeout_s: float = 60.0, max_retries: int = 4,
                 backoff_s: float = 1.0, backoff_max_s: float = 30.0,
                 api_key_env: str = "OPENAI_API_KEY", tokenizer: str | None = None,
                 context_tokens: int | None = None, split_greedy: bool = False,
                 server_stops: int = MAX_SERVER_STOPS, logprobs: bool = True) -> None:
        if mode not in ("completions", "chat"):
            raise ValueError(f"mode must be 'completions' or 'chat', not {mode!r}")
        super().__init__(name=f"openai-{mode}:{model}" + (f"@{base_url}" if base_url else ""))
        self.model, self.base_url, self.mode = model, base_url, mode
        self.concurrency = max(1, int(concurrency))
        self.timeout_s, self.max_retries = float(timeout_s), max(0, int(max_retries))
        self.backoff_s, self.backoff_max_s = float(backoff_s), float(backoff_max_s)
        self._api_key_env = api_key_env
        self._context_tokens = context_tokens
        self._tokenizer: Any = None
        if tokenizer:  # optional: a local HF tokenizer folder for exact prompt budgets
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(tokenizer)
        self.stats = {"requests": 0, "retries": 0, "failures": 0}
        self._stats_lock = threading.Lock()  # calls from several threads (vpd synth's in-flight questions)
        # A server cannot mix a greedy choice into a sampled n=k request: by default generate_k
        # sends one n=k request (all sampled); split_greedy spends a second, greedy request.
        self.split_greedy = bool(split_greedy)
        self.server_stops = max(0, int(server_stops))
        self.mixes_greedy_in_one_request = not self.split_greedy
        self.logprobs = bool(logprobs)

    # -- Sampler API -----------------------------------------------------------------------
    def count_tokens(self, text: str) -> int:
        if self._tokenizer is not None:
            with self._stats_lock:  # prompts are built from several threads; a fast tokenizer is not re-entrant
                return len(self._tokenizer(text, add_special_tokens=False)["input_ids"])
        return estimate_tokens(text)

    @property
    def context_tokens(self) -> int | None:
        return self._context_tokens

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "model": self.model, "base_url": self.base_url,
                "mode": self.mode, "concurrency": self.concurrency, "timeout_s": self.timeout_s,
                "max_retries": self.max_retries, "context_tokens": self._context_tokens,
                "split_greedy": self.split_greedy, "server_stops": self.server_stops, "logprobs": self.logprobs}

    def generate_k(self, prompts: Sequence[str], *, k: int, temperature: float, greedy_first: bool = False,
                   max_tokens: int = 256, stop: Sequence[str] | None = None,
                   seed: int | None = None) -> list[list[Completion]]:
        """``k`` candidates per prompt in one ``n = k`` request each (prompts run concurrently).
        ``greedy_first`` is honoured only with ``split_greedy`` (a separate greedy request)."""
        if self.split_greedy:
            return super().generate_k(prompts, k=k, temperature=temperature, greedy_first=greedy_first,
                                      max_tokens=max_tokens, stop=stop, seed=seed)
        if k <= 0:
            return [[] for _ in prompts]
        return self.generate(prompts, n=k, temperature=temperature, max_tokens=max_tokens, stop=stop, seed=seed)

    def generate(self, prompts: Sequence[str], *, n: int = 1, temperature: float = 0.0,
                 max_tokens: int = 256, stop: Sequence[str] | None = None,
                 seed: int | None = None) -> list[list[Completion]]:
        if self.mode == "chat":
            stop = [s for s in (stop or ()) if s.startswith(CHAT_STOP_PREFIX)]
        if not prompts:
            return []
        coro = self._generate_all(list(prompts), max(1, int(n)), float(temperature), int(max_tokens),
                                  list(stop or ()), seed)
        try:
            asyncio.get_running_loop()
        except RuntimeError:
            return asyncio.run(coro)
        # Called from inside an event loop: run ours in a helper thread.
        box: dict[str, Any] = {}
        t = threading.Thread(target=lambda: box.setdefault("r", asyncio.run(coro)))
        t.start()
        t.join()
        return box["r"]

    # -- internals -------------------------------------------------------------------------
    def _count(self, key: str) -> None:
        with self._stats_lock:
            self.stats[key] += 1

    async def _generate_all(self, prompts: list[str], n: int, temperature: float, max_tokens: int,
                            stop: list[str], seed: int | None) -> list[list[Completion]]:
        from openai import AsyncOpenAI

        client = AsyncOpenAI(api_key=os.environ.get(self._api_key_env) or "EMPTY",
                             base_url=self.base_url, timeout=self.timeout_s, max_retries=0)
        sem = asyncio.Semaphore(self.concurrency)
        try:
            tasks = [self._one_prompt(client, sem, p, n, temperature, max_tokens, stop,
                                      None if seed is None else seed + i)
                     for i, p in enumerate(prompts)]
            return list(await asyncio.gather(*tasks))
        finally:
            await client.close()

    async def _one_prompt(self, client: Any, sem: asyncio.Semaphore, prompt: str, n: int,
                          temperature: float, max_tokens: int, stop: list[str],
                          seed: int | None) -> list[Completion]:
        out: list[Completion] = []
        for _ in range(n):  # more rounds only when the server ignores n
            want = n - len(out)
            async with sem:
                got = await self._request_with_retries(client, prompt, want, temperature, max_tokens,
                                                       stop, seed if not out else None)
            if isinstance(got, str):  # an error: the missing completions carry it
                out += [Completion(text="", prompt_tokens=0, completion_tokens=0, error=got)] * want
                break
            out += got[:want]
            if len(out) >= n or not got:
                break
        if len(out) < n:
            out += [Completion(text="", error="server returned fewer completions than requested")] * (n - len(out))
        return out

    async def _request_with_retries(self, client: Any, prompt: str, n: int, temperature: float,
                                    max_tokens: int, stop: list[str],
                                    seed: int | None) -> list[Completion] | str:
        import openai

        attempt = 0
        while True:
            self._count("requests")
            try:
                return await self._request(client, prompt, n, temperature, max_tokens, stop, seed)
            except (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError,
                    openai.APIConnectionError) as exc:
                retryable, err = True, exc
            except openai.APIStatusError as exc:
                retryable, err = exc.status_code >= 500 or exc.status_code in (408, 409, 429), exc
            except Exception as exc:  # a malformed answer, a client bug: record, never raise
                retryable, err = False, exc
            if not retryable or attempt >= self.max_retries:
                self._count("failures")
                return _describe_error(err, attempt)
            delay = min(self.backoff_max_s, self.backoff_s * (2 ** attempt)) * (0.5 + random.random() / 2)
            delay = max(delay, min(self.backoff_max_s, _retry_after_s(err)))
            attempt += 1
            self._count("retries")
            await asyncio.sleep(delay)

    async def _request(self, client: Any, prompt: str, n: int, temperature: float, max_tokens: int,
                       stop: list[str], seed: int | None) -> list[Completion]:
        kw: dict[str, Any] = {"model": self.model, "n": n, "temperature": temperature,
                              "max_tokens": max_tokens}
        if stop and self.server_stops:
            kw["stop"] = stop[:self.server_stops]
        if seed is not None:
            kw["seed"] = seed
        if self.logprobs:
            kw["logprobs"] = True if self.mode == "chat" else 1
        if self.mode == "chat":
            resp = await client.chat.completions.create(messages=[{"role": "user", "content": prompt}], **kw)
            texts = [(c.message.content or "") if c.message is not None else "" for c in resp.choices]
        else:
            resp = await client.completions.create(prompt=prompt, **kw)
            texts = [c.text or "" for c in resp.choices]
        scores = [choice_mean_logprob(c) for c in resp.choices]
        usage = getattr(resp, "usage", None)
        p_tok = int(getattr(usage, "prompt_tokens", 0) or 0) or self.count_tokens(prompt)
        texts = [truncate_at_stop(t, stop)[0] for t in texts]
        total = int(getattr(usage, "completion_tokens", 0) or 0)
        per = _split_tokens(total, texts) if total else [self.count_tokens(t) for t in texts]
        return [Completion(text=t, prompt_tokens=p_tok, completion_tokens=c, mean_logprob=lp)
                for t, c, lp in zip(texts, per, scores)]


def choice_mean_logprob(choice: Any) -> float | None:
    """Mean log-probability of a response choice's tokens: ``logprobs.token_logprobs``
    (completions) or ``logprobs.content[i].logprob`` (chat); None when the server sent none."""
    lp = getattr(choice, "logprobs", None)
    if lp is None:
        return None
    if isinstance(lp, dict):  # servers whose answer the client kept as a plain mapping
        content, tokens = lp.get("content"), lp.get("token_logprobs")
    else:
        content, tokens = getattr(lp, "content", None), getattr(lp, "token_logprobs", None)
    if content:
        return mean_logprob([(t.get("logprob") if isinstance(t, dict) else getattr(t, "logprob", None))
                             for t in content])
    return mean_logprob(tokens)


def _split_tokens(total: int, texts: list[str]) -> list[int]:
    """Share a response's completion-token total among its choices in proportion to their length."""
    if not texts:
        return []
    lengths = [len(t) for t in texts]
    s = sum(lengths)
    if s == 0:
        base = [total // len(texts)] * len(texts)
    else:
        base = [total * L // s for L in lengths]
    base[0] += total - sum(base)
    return base


def _retry_after_s(exc: BaseException) -> float:
    resp = getattr(exc, "response", None)
    try:
        value = resp.headers.get("retry-after") if resp is not None else None
        return float(value) if value is not None else 0.0
    except (TypeError, ValueError, AttributeError):
        return 0.0


def _describe_error(exc: BaseException, retries: int) -> str:
    status = getattr(exc, "status_code", None)
    kind = type(exc).__name__
    msg = str(exc).splitlines()[0][:300] if str(exc) else ""
    head = f"{kind}" + (f" (HTTP {status})" if status else "")
    return f"{head}: {msg} [after {retries} retries]"


def _factory(mode: str):
    def make(rest: str, **options: Any) -> OpenAISampler:
        model, url = parse_openai_spec(rest)
        options.setdefault("mode", mode)
        return OpenAISampler(model, url, **options)

    return make


SAMPLERS.add("openai", _factory("completions"))
SAMPLERS.add("openai-completions", _factory("completions"))
SAMPLERS.add("openai-chat", _factory("chat"))
