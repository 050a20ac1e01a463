"""Any OpenAI-compatible multimodal chat endpoint as ``vqa`` / ``caption`` / ``llm_query``.

Works with OpenAI (GPT-4o class), vLLM serving Qwen2-VL / LLaVA, llama.cpp's server, and our own
``vpd tools serve``. Images go inline as base64 ``data:`` URLs (PNG, longer side capped at option
``max_side`` = 1024 px). Options:

* ``model`` (required), ``base_url`` (default: the openai package's, i.e. ``$OPENAI_BASE_URL``),
  ``api_key_env`` (name of the env var holding the key, default ``OPENAI_API_KEY``; ``EMPTY`` when
  unset, which local servers accept — the key is never logged nor part of the cache tag);
  ``caption_model`` / ``llm_model`` (per-tool model overrides, default ``model``);
* ``vqa_prompt`` (default ``"{question}\\nAnswer with a single word or phrase."``, the label prompt of
  our training mixtures), ``caption_prompt``, ``max_tokens`` (32), ``llm_max_tokens`` (256),
  ``temperature`` (0);
* ``timeout_s`` (60), ``max_retries`` (4), ``backoff_s`` (1.0), ``backoff_max_s`` (30): 429, 5xx,
  timeouts and connection errors are retried with exponential backoff and jitter, honouring a
  ``Retry-After`` header up to the cap; other errors (400, 401 …) fail at once;
* ``requests_per_minute`` (0 = unlimited): a client-side rate limit shared by all threads;
* ``concurrency`` (8): ``*_batch`` calls run this many requests at once (results in input order).
"""

from __future__ import annotations

import base64
import io
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from PIL import Image

from vpd.tools.backend import Backend, register_backend
from vpd.tools.errors import ToolError

DEFAULT_VQA_PROMPT = "{question}\nAnswer with a single word or phrase."
DEFAULT_CAPTION_PROMPT = "Describe the image in one sentence."


def image_data_url(image: Image.Image, *, max_side: int = 1024, fmt: str = "PNG") -> str:
    """``data:image/png;base64,…`` of ``image`` (downscaled so its longer side is <= ``max_side``)."""
    img = image.convert("RGB")
    if max(img.size) > max_side:
        scale = max_side / max(img.size)
        img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))), Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format=fmt)
    return f"data:image/{fmt.lower()};base64," + base64.b64encode(buf.getvalue()).decode("ascii")


class RateLimiter:
    """At most ``per_minute`` acquisitions per minute (evenly spaced); thread-safe. 0 = unlimited."""

    def __init__(self, per_minute: float = 0.0) -> None:
        self.interval = 60.0 / per_minute if per_minute and per_minute > 0 else 0.0
        self._next = 0.0
        self._lock = threading.Lock()

    def acquire(self) -> float:
        """Block until a request may go; returns the seconds waited."""
        if not self.interval:
            return 0.0
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self.interval
        wait = slot - now
        if wait > 0:
            time.sleep(wait)
        return max(0.0, wait)


@register_backend("openai_vlm")
class OpenAIVLMBackend(Backend):
    """A remote (or local) OpenAI-compatible vision-language model."""

    provides = frozenset({"vqa", "caption", "llm_query"})
    batchable = frozenset({"vqa", "caption", "llm_query"})
    max_batch = 8
    memory_class = "remote"
    needs = "openai (client); an OpenAI-compatible /v1/chat/completions endpoint"
    version = "2"  # 2: the tag keys every answer-changing setting (key_settings), not a hand-picked few
    settings = {"model": None, "caption_model": None, "llm_model": None, "base_url": None,
                "api_key_env": "OPENAI_API_KEY", "vqa_prompt": DEFAULT_VQA_PROMPT,
                "caption_prompt": DEFAULT_CAPTION_PROMPT, "max_tokens": 32, "llm_max_tokens": 256,
                "temperature": 0.0, "max_side": 1024, "timeout_s": 60.0, "max_retries": 4, "backoff_s": 1.0,
                "backoff_max_s": 30.0, "requests_per_minute": 0.0, "concurrency": 8}
    #: The endpoint (a model name means different weights on different servers) and everything in a request.
    key_settings = frozenset({"model", "caption_model", "llm_model", "base_url", "vqa_prompt", "caption_prompt",
                              "max_tokens", "llm_max_tokens", "temperature", "max_side"})
    runtime_settings = frozenset({"api_key_env", "timeout_s", "max_retries", "backoff_s", "backoff_max_s",
                                  "requests_per_minute", "concurrency"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        if not options.get("model"):
            raise ToolError("openai_vlm needs `model` (and usually `base_url`) in the tools config")
        from openai import OpenAI

        self.model = str(options["model"])
        self.models = {"vqa": self.model, "caption": str(self.setting("caption_model") or self.model),
                       "llm_query": str(self.setting("llm_model") or self.model)}
        self.base_url = self.setting("base_url")
        self.timeout_s = self.setting("timeout_s")
        self.max_retries = max(0, self.setting("max_retries"))
        self.backoff_s = self.setting("backoff_s")
        self.backoff_max_s = self.setting("backoff_max_s")
        self.max_batch = self.concurrency = max(1, self.setting("concurrency"))
        self.limiter = RateLimiter(self.setting("requests_per_minute") or 0.0)
        self.vqa_prompt = self.setting("vqa_prompt")
        self.caption_prompt = self.setting("caption_prompt")
        self.max_tokens = self.setting("max_tokens")
        self.llm_max_tokens = self.setting("llm_max_tokens")
        self.temperature = self.setting("temperature")
        self.max_side = self.setting("max_side")
        key = os.environ.get(self.setting("api_key_env")) or "EMPTY"
        self.client = OpenAI(api_key=key, base_url=self.base_url, timeout=self.timeout_s, max_retries=0)
        self.stats = {"requests": 0, "retries": 0, "failures": 0, "rate_wait_s": 0.0}
        self._stats_lock = threading.Lock()

    def effective_setting(self, name: str) -> Any:
        """Per-tool models resolved (an unset ``caption_model`` is ``model``); ``base_url`` as the client
        uses it (unset: ``$OPENAI_BASE_URL`` or OpenAI's)."""
        if name in ("model", "caption_model", "llm_model"):
            return self.models[{"model": "vqa", "caption_model": "caption", "llm_model": "llm_query"}[name]]
        if name == "base_url":
            return str(self.client.base_url)
        return super().effective_setting(name)

    @classmethod
    def weights_status(cls, options: dict[str, Any] | None = None) -> str:
        url = (options or {}).get("base_url") or os.environ.get("OPENAI_BASE_URL") or "api.openai.com"
        return f"remote: {url}"

    # -- requests --------------------------------------------------------------------------
    def _bump(self, key: str, by: float = 1) -> None:
        with self._stats_lock:
            self.stats[key] += by

    def chat(self, tool: str, text: str, image: Image.Image | None, max_tokens: int) -> str:
        """One chat completion with retries; returns the message text."""
        import openai

        content: Any = text
        if image is not None:
            content = [{"type": "image_url", "image_url": {"url": image_data_url(image, max_side=self.max_side)}},
                       {"type": "text", "text": text}]
        messages = [{"role": "user", "content": content}]
        attempt = 0
        while True:
            self._bump("rate_wait_s", self.limiter.acquire())
            self._bump("requests")
            try:
                resp = self.client.chat.completions.create(model=self.models[tool], messages=messages,
                                                           max_tokens=max_tokens, temperature=self.temperature)
                if not resp.choices:
                    raise ToolError(f"{self.name}: the server returned no choices")
                return (resp.choices[0].message.content or "").strip()
            except (openai.RateLimitError, openai.InternalServerError, openai.APITimeoutError,
                    openai.APIConnectionError) as exc:
                err: Exception = exc
            except openai.APIStatusError as exc:
                if not (exc.status_code >= 500 or exc.status_code in (408, 409, 429)):
                    self._bump("failures")
                    raise ToolError(f"{self.name}: HTTP {exc.status_code}: {_message(exc)}") from None
                err = exc
            if attempt >= self.max_retries:
                self._bump("failures")
                raise ToolError(f"{self.name}: gave up after {attempt + 1} attempts: {type(err).__name__}: "
                                f"{_message(err)}") from None
            time.sleep(self._delay(attempt, err))
            attempt += 1
            self._bump("retries")

    def _delay(self, attempt: int, err: Exception) -> float:
        delay = self.backoff_s * (2 ** attempt) * (0.5 + random.random() / 2)
        response = getattr(err, "response", None)
        retry_after = response.headers.get("retry-after") if response is not None else None
        if retry_after:
            try:
                delay = max(delay, float(retry_after))
            except ValueError:
                pass
        return min(delay, self.backoff_max_s)

    # -- tools -----------------------------------------------------------------------------
    def vqa(self, image: Image.Image, question: str) -> str:
        return self.chat("vqa", self.vqa_prompt.format(question=question), image, self.max_tokens)

    def caption(self, image: Image.Image) -> str:
        return self.chat("caption", self.caption_prompt, image, self.max_tokens * 2)

    def llm_query(self, question: str, long_answer: bool = True) -> str:
        text = question if long_answer else f"{question}\nAnswer with a single word or short phrase."
        return self.chat("llm_query", text, None, self.llm_max_tokens if long_answer else self.max_tokens)

    def _concurrent(self, fn: Callable[[Any, dict[str, Any]], Any], images: list[Any],
                    args: list[dict[str, Any]]) -> list[Any]:
        def one(pair: tuple[Any, dict[str, Any]]) -> Any:
            try:
                return fn(*pair)
            except Exception as exc:  # recorded per input
                return exc

        with ThreadPoolExecutor(max_workers=min(self.concurrency, max(1, len(images)))) as pool:
            return list(pool.map(one, zip(images, args)))

    def vqa_batch(self, images: list[Image.Image], args: list[dict[str, Any]]) -> list[Any]:
        return self._concurrent(lambda im, a: self.vqa(im, **a), images, args)

    def caption_batch(self, images: list[Image.Image], args: list[dict[str, Any]]) -> list[Any]:
        return self._concurrent(lambda im, a: self.caption(im), images, args)

    def llm_query_batch(self, images: list[Any], args: list[dict[str, Any]]) -> list[Any]:
        return self._concurrent(lambda _im, a: self.llm_query(**a), images, args)

    def close(self) -> None:
        self.client.close()


def _message(exc: Exception) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        err = body.get("error", body)
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
    return str(exc)
