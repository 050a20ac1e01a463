"""Serve any sampler as an OpenAI-compatible LLM server: ``vpd llm serve --llm gemma --port 8001``.

Routes: ``POST /v1/completions`` (``prompt`` a string or a list, ``n``, ``temperature``,
``max_tokens``, ``stop``, ``seed``), ``POST /v1/chat/completions`` (the messages' text joined into
one prompt, for base models), ``GET /v1/models``, ``GET /health`` (counters and batch sizes).

One model, many clients: concurrent requests with the same sampling parameters are gathered into one
:meth:`Sampler.generate` call — a **micro-batch** of up to ``max_batch`` prompts, waiting at most
``max_wait_ms`` for company — so several ``vpd synth`` workers (or one with questions in flight)
share the packaged Gemma on a CPU box the way they would share vLLM on a GPU. The sampler runs on
one thread. A batch is seeded by its first request; ``max_batch=1`` makes every request
reproducible on its own. A failed generation answers 500 (clients retry); a malformed request 400.
"""

from __future__ import annotations

import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import ThreadingHTTPServer
from typing import Any, Sequence

from vpd.openai_http import RequestError, make_http_server, route
from vpd.programs.sampler_base import Completion, Sampler

MAX_N = 64
MAX_PROMPTS = 64


@dataclass
class _Job:
    prompts: list[str]
    key: tuple  # (n, temperature, max_tokens, stop): only equal keys share a generate call
    seed: int | None
    done: threading.Event = field(default_factory=threading.Event)
    result: list[list[Completion]] | None = None
    error: BaseException | None = None


class MicroBatcher:
    """Runs ``sampler.generate`` on one thread, gathering queued requests with equal parameters."""

    def __init__(self, sampler: Sampler, *, max_batch: int = 8, max_wait_ms: float = 20.0) -> None:
        self.sampler = sampler
        self.max_batch = max(1, int(max_batch))
        self.max_wait_s = max(0.0, float(max_wait_ms)) / 1000.0
        self._queue: list[_Job] = []
        self._cv = threading.Condition()
        self._closed = False
        self.batch_sizes: list[int] = []  # prompts per generate call, in order
        self._thread = threading.Thread(target=self._loop, daemon=True, name="vpd-llm-batcher")
        self._thread.start()

    def submit(self, prompts: Sequence[str], *, n: int, temperature: float, max_tokens: int,
               stop: Sequence[str], seed: int | None) -> list[list[Completion]]:
        """``n`` completions per prompt (blocks until its batch ran); re-raises a generate error."""
        job = _Job(prompts=list(prompts), key=(n, temperature, max_tokens, tuple(stop)), seed=seed)
        with self._cv:
            if self._closed:
                raise RuntimeError("the server is shutting down")
            self._queue.append(job)
            self._cv.notify_all()
        job.done.wait()
        if job.error is not None:
            raise job.error
        assert job.result is not None
        return job.result

    def _take(self) -> list[_Job] | None:
        """The next batch (under the lock): the oldest job and queued ones with its key."""
        with self._cv:
            while not self._queue and not self._closed:
                self._cv.wait()
            if not self._queue:
                return None
            first = self._queue[0]
            deadline = time.monotonic() + self.max_wait_s
            while True:
                ready = sum(len(j.prompts) for j in self._queue if j.key == first.key)
                left = deadline - time.monotonic()
                if ready >= self.max_batch or left <= 0 or self._closed:
                    break
                self._cv.wait(left)
            take, total = [], 0
            for job in list(self._queue):
                if job.key == first.key and (not take or total + len(job.prompts) <= self.max_batch):
                    take.append(job)
                    total += len(job.prompts)
                    self._queue.remove(job)
            return take

    def _loop(self) -> None:
        while (batch := self._take()) is not None:
            n, temperature, max_tokens, stop = batch[0].key
            prompts = [p for job in batch for p in job.prompts]
            self.batch_sizes.append(len(prompts))
            try:
                rows = self.sampler.generate(prompts, n=n, temperature=temperature, max_tokens=max_tokens,
                                             stop=list(stop), seed=batch[0].seed)
            except BaseException as exc:  # handed to every waiting request
                for job in batch:
                    job.error = exc
            else:
                at = 0
                for job in batch:
                    job.result = rows[at:at + len(job.prompts)]
                    at += len(job.prompts)
            for job in batch:
                job.done.set()

    def close(self) -> None:
        with self._cv:
            self._closed = True
            self._cv.notify_all()
        self._thread.join(timeout=5)


def _prompts_of(body: dict[str, Any]) -> list[str]:
    prompt = body.get("prompt")
    if isinstance(prompt, str):
        return [prompt]
    if isinstance(prompt, list) and prompt and all(isinstance(p, str) for p in prompt):
        if len(prompt) > MAX_PROMPTS:
            raise RequestError(f"at most {MAX_PROMPTS} prompts per request")
        return list(prompt)
    raise RequestError("`prompt` must be a string or a non-empty list of strings (token ids are not supported)")


def _chat_prompt(messages: Any) -> str:
    if not isinstance(messages, list) or not messages:
        raise RequestError("`messages` must be a non-empty list")
    parts = []
    for m in messages:
        content = m.get("content") if isinstance(m, dict) else None
        if isinstance(content, list):
            content = "\n".join(str(p.get("text", "")) for p in content if isinstance(p, dict) and p.get("type") == "text")
        if not isinstance(content, str):
            raise RequestError("message content must be a string or a list of text parts")
        parts.append(content)
    return "\n\n".join(parts)


def _params(body: dict[str, Any]) -> dict[str, Any]:
    if body.get("stream"):
        raise RequestError("streaming is not supported")
    try:
        n = 1 if body.get("n") is None else int(body["n"])
        temperature = 1.0 if body.get("temperature") is None else float(body["temperature"])
        raw_max = body.get("max_tokens", body.get("max_completion_tokens"))
        max_tokens = 256 if raw_max is None else int(raw_max)
        seed = None if body.get("seed") is None else int(body["seed"])
    except (TypeError, ValueError) as exc:
        raise RequestError(f"bad sampling parameter: {exc}") from None
    if not 1 <= n <= MAX_N:
        raise RequestError(f"`n` must be in 1..{MAX_N}")
    if temperature < 0 or max_tokens < 1:
        raise RequestError("`temperature` must be >= 0 and `max_tokens` >= 1")
    stop = body.get("stop") or []
    stop = [stop] if isinstance(stop, str) else stop
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop):
        raise RequestError("`stop` must be a string or a list of strings")
    return {"n": n, "temperature": temperature, "max_tokens": max_tokens, "stop": stop, "seed": seed}


class SamplerEndpoint:
    """The protocol logic of ``vpd llm serve`` (see the module docstring), independent of HTTP."""

    def __init__(self, sampler: Sampler, *, name: str = "vpd-llm", max_batch: int = 8,
                 max_wait_ms: float = 20.0) -> None:
        self.sampler, self.name = sampler, name
        self.batcher = MicroBatcher(sampler, max_batch=max_batch, max_wait_ms=max_wait_ms)
        self.requests = 0
        self.failures = 0
        self._lock = threading.Lock()

    def models(self) -> dict[str, Any]:
        return {"object": "list", "data": [{"id": self.name, "object": "model", "created": 0, "owned_by": "vpd",
                                            "context_length": self.sampler.context_tokens}]}

    def health(self) -> dict[str, Any]:
        sizes = list(self.batcher.batch_sizes)
        return {"status": "ok", "model": self.name, "sampler": self.sampler.describe(), "requests": self.requests,
                "failures": self.failures, "batches": len(sizes),
                "mean_batch_prompts": round(sum(sizes) / len(sizes), 3) if sizes else 0.0}

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        where = route(path)
        if where == "/completions":
            return self._answer(body, _prompts_of(body), chat=False)
        if where == "/chat/completions":
            return self._answer(body, [_chat_prompt(body.get("messages"))], chat=True)
        raise LookupError(f"no route {path}")

    def _answer(self, body: dict[str, Any], prompts: list[str], *, chat: bool) -> dict[str, Any]:
        model = str(body.get("model") or self.name)
        if model != self.name:
            raise LookupError(f"unknown model {model!r} (serving: {self.name})")
        params = _params(body)
        with self._lock:
            self.requests += 1
        rows = self.batcher.submit(prompts, **params)
        errors = [c.error for row in rows for c in row if c.error]
        if errors:
            with self._lock:
                self.failures += 1
            raise RuntimeError(f"generation failed: {errors[0]}")
        choices: list[dict[str, Any]] = []
        for i, row in enumerate(rows):
            for j, c in enumerate(row[:params["n"]]):
                index = i * params["n"] + j
                if chat:
                    choices.append({"index": index, "message": {"role": "assistant", "content": c.text},
                                    "finish_reason": "stop", "logprobs": None})
                else:
                    choices.append({"index": index, "text": c.text, "finish_reason": "stop", "logprobs": None})
        prompt_tokens = sum(row[0].prompt_tokens for row in rows if row)
        completion_tokens = sum(c.completion_tokens for row in rows for c in row)
        return {"id": f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}",
                "object": "chat.completion" if chat else "text_completion", "created": int(time.time()),
                "model": self.name, "choices": choices,
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                          "total_tokens": prompt_tokens + completion_tokens}}

    def close(self) -> None:
        self.batcher.close()


def make_llm_server(sampler: Sampler, *, host: str = "127.0.0.1", port: int = 8001, name: str = "vpd-llm",
                    api_key: str | None = None, max_batch: int = 8, max_wait_ms: float = 20.0) -> ThreadingHTTPServer:
    """A ready (not yet serving) server for ``sampler``; ``port=0`` picks a free port."""
    endpoint = SamplerEndpoint(sampler, name=name, max_batch=max_batch, max_wait_ms=max_wait_ms)
    return make_http_server(endpoint, host=host, port=port, api_key=api_key, server_version="vpd-llm/1")
