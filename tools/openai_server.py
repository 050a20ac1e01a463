"""Serve a toolbox as an OpenAI-compatible VLM endpoint (``/v1/chat/completions``, ``/v1/models``).

``vpd tools serve --tools SPEC --port P`` puts any toolbox (the offline ``shapes`` backend, BLIP-2,
our distilled student …) behind the protocol that ``openai_vlm``, vLLM clients and the ``openai``
package speak, so tool backends can run on other machines and be shared by many synth workers.
Requests are served by a :class:`~vpd.tools.server.ToolServer`: concurrent requests to a batchable
tool become micro-batches, and a tool cache (if given) is shared.

Routing by the request's ``model``: ``{name}-vqa``, ``{name}-caption``, ``{name}-llm_query`` pick
the tool; plain ``{name}`` (default name ``vpd``) routes by content: an image with text -> ``vqa``
(the text is the question), an image alone -> ``caption``, text alone -> ``llm_query``. The text is
the last user message's text parts joined; images must be inline ``data:`` URLs (no remote fetch).
Errors use OpenAI's shape ``{"error": {"message", "type", "code"}}``: 400 for bad requests and
unsupported queries (not retryable), 404 for unknown models/paths, 500 for backend failures.
Streaming is not supported (400).
"""

from __future__ import annotations

import base64
import binascii
import threading
import time
import uuid
from http.server import ThreadingHTTPServer
from typing import Any

from PIL import Image

from vpd.images import load_image
from vpd.openai_http import RequestError, make_http_server, route
from vpd.tools.errors import ToolError, UnsupportedQuery
from vpd.tools.toolbox import Toolbox

SERVED_TOOLS = ("vqa", "caption", "llm_query")
#: Answer-format instructions stripped from vqa questions (our mixtures' label prompt suffix):
#: the served tools take bare questions.
FORMAT_SUFFIXES = ("answer with a single word or phrase.", "answer with a single word or short phrase.")


def decode_data_url(url: str) -> Image.Image:
    """An RGB image from ``data:image/...;base64,...``; RequestError otherwise."""
    if not isinstance(url, str) or not url.startswith("data:") or ";base64," not in url:
        raise RequestError("images must be inline base64 data URLs (data:image/png;base64,...)")
    try:
        raw = base64.b64decode(url.split(";base64,", 1)[1], validate=False)
    except (binascii.Error, ValueError) as exc:
        raise RequestError(f"bad base64 image: {exc}") from None
    try:
        return load_image(raw)
    except ValueError as exc:
        raise RequestError(str(exc)) from None


def parse_messages(messages: Any) -> tuple[str, list[Image.Image]]:
    """(text, images) of the last user message; text parts joined with newlines."""
    if not isinstance(messages, list) or not messages:
        raise RequestError("`messages` must be a non-empty list")
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    if not users:
        raise RequestError("no user message")
    content = users[-1].get("content")
    if isinstance(content, str):
        return content, []
    if not isinstance(content, list):
        raise RequestError("message content must be a string or a list of parts")
    texts, images = [], []
    for part in content:
        kind = part.get("type") if isinstance(part, dict) else None
        if kind == "text":
            texts.append(str(part.get("text", "")))
        elif kind == "image_url":
            url = part.get("image_url")
            images.append(decode_data_url(url.get("url") if isinstance(url, dict) else url))
        else:
            raise RequestError(f"unsupported content part {kind!r}")
    return "\n".join(t for t in texts if t.strip()), images


def strip_format_suffix(text: str) -> str:
    """``"How many cubes?\nAnswer with a single word or phrase."`` -> ``"How many cubes?"``."""
    out = text.strip()
    for suffix in FORMAT_SUFFIXES:
        if out.lower().endswith(suffix):
            out = out[: -len(suffix)].strip()
    return out


class ToolboxEndpoint:
    """The protocol logic, independent of HTTP (used by the handler and testable on its own)."""

    def __init__(self, toolbox: Toolbox, *, name: str = "vpd", max_wait_ms: float = 5.0) -> None:
        from vpd.tools.server import ToolServer

        self.name = name
        self.server = toolbox if hasattr(toolbox, "submit_json") else ToolServer(toolbox, max_wait_ms=max_wait_ms)
        self.tools = [t for t in SERVED_TOOLS if t in toolbox.backends]
        if not self.tools:
            raise ValueError(f"the toolbox serves none of {', '.join(SERVED_TOOLS)}")
        self.requests = 0
        self._lock = threading.Lock()

    def models(self) -> dict[str, Any]:
        ids = [self.name] + [f"{self.name}-{t}" for t in self.tools]
        return {"object": "list", "data": [{"id": i, "object": "model", "created": 0, "owned_by": "vpd"} for i in ids]}

    def route(self, model: str, text: str, images: list[Image.Image]) -> str:
        if model == self.name:
            tool = ("vqa" if text.strip() else "caption") if images else "llm_query"
        elif model.startswith(self.name + "-") and model[len(self.name) + 1:] in SERVED_TOOLS:
            tool = model[len(self.name) + 1:]
        else:
            raise LookupError(f"unknown model {model!r} (serving: {', '.join(m['id'] for m in self.models()['data'])})")
        if tool not in self.tools:
            raise LookupError(f"model {model!r}: this server has no {tool!r} tool")
        return tool

    def health(self) -> dict[str, Any]:
        return {"status": "ok", "tools": self.tools, "requests": self.requests}

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        if route(path) != "/chat/completions":
            raise LookupError(f"no route {path}")
        return self.complete(body)

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("stream"):
            raise RequestError("streaming is not supported")
        model = str(body.get("model") or self.name)
        text, images = parse_messages(body.get("messages"))
        if len(images) > 1:
            raise RequestError("at most one image per request")
        tool = self.route(model, text, images)
        if tool == "vqa":
            if not images or not text.strip():
                raise RequestError("vqa needs an image and a question")
            answer, _ = self.server.call_json("vqa", images[0], question=strip_format_suffix(text))
        elif tool == "caption":
            if not images:
                raise RequestError("caption needs an image")
            answer, _ = self.server.call_json("caption", images[0])
        else:
            answer, _ = self.server.call_json("llm_query", None, question=text, long_answer=True)
        with self._lock:
            self.requests += 1
        answer = str(answer)
        prompt_tokens = len(text.split()) + 256 * len(images)
        return {"id": f"chatcmpl-{uuid.uuid4().hex[:24]}", "object": "chat.completion", "created": int(time.time()),
                "model": model, "system_fingerprint": f"vpd-{tool}",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": answer},
                             "finish_reason": "stop", "logprobs": None}],
                "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": len(answer.split()),
                          "total_tokens": prompt_tokens + len(answer.split())}}


def make_server(toolbox: Toolbox, *, host: str = "127.0.0.1", port: int = 8000, name: str = "vpd",
                api_key: str | None = None, max_wait_ms: float = 5.0) -> ThreadingHTTPServer:
    """A ready (not yet serving) HTTP server; ``port=0`` picks a free port (see ``server_address``)."""
    return make_http_server(ToolboxEndpoint(toolbox, name=name, max_wait_ms=max_wait_ms), host=host, port=port,
                            api_key=api_key, client_errors=(UnsupportedQuery, ToolError))
