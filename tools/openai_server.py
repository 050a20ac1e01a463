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
import json
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from PIL import Image

from vpd.images import load_image
from vpd.tools.errors import ToolError, UnsupportedQuery
from vpd.tools.toolbox import Toolbox

SERVED_TOOLS = ("vqa", "caption", "llm_query")
#: Answer-format instructions stripped from vqa questions (our mixtures' label prompt suffix):
#: the served tools take bare questions.
FORMAT_SUFFIXES = ("answer with a single word or phrase.", "answer with a single word or short phrase.")
MAX_BODY_BYTES = 32 << 20


class RequestError(ValueError):
    """A malformed request (HTTP 400)."""


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


def _error(status: int, message: str, kind: str) -> tuple[int, dict[str, Any]]:
    return status, {"error": {"message": message, "type": kind, "code": None, "param": None}}


def make_handler(endpoint: ToolboxEndpoint, *, api_key: str | None = None) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "vpd-openai/1"

        def log_message(self, fmt: str, *args: Any) -> None:  # quiet by default
            return

        def _send(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _authorised(self) -> bool:
            if not api_key:
                return True
            return self.headers.get("Authorization", "") == f"Bearer {api_key}"

        def do_GET(self) -> None:
            if not self._authorised():
                return self._send(*_error(401, "invalid API key", "authentication_error"))
            if self.path.rstrip("/") in ("/v1/models", "/models"):
                return self._send(200, endpoint.models())
            if self.path.rstrip("/") in ("/health", "/v1/health"):
                return self._send(200, {"status": "ok", "tools": endpoint.tools, "requests": endpoint.requests})
            self._send(*_error(404, f"no route {self.path}", "invalid_request_error"))

        def do_POST(self) -> None:
            if not self._authorised():
                return self._send(*_error(401, "invalid API key", "authentication_error"))
            if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
                return self._send(*_error(404, f"no route {self.path}", "invalid_request_error"))
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    raise RequestError(f"request body over {MAX_BODY_BYTES} bytes")
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise RequestError("request body must be a JSON object")
                self._send(200, endpoint.complete(body))
            except (RequestError, json.JSONDecodeError, UnsupportedQuery) as exc:
                self._send(*_error(400, f"{type(exc).__name__}: {exc}", "invalid_request_error"))
            except LookupError as exc:
                self._send(*_error(404, str(exc.args[0] if exc.args else exc), "invalid_request_error"))
            except ToolError as exc:
                self._send(*_error(400, f"{type(exc).__name__}: {exc}", "invalid_request_error"))
            except Exception as exc:  # a backend bug: 500 (clients may retry), the server lives on
                self._send(*_error(500, f"{type(exc).__name__}: {exc}", "server_error"))

    return Handler


def make_server(toolbox: Toolbox, *, host: str = "127.0.0.1", port: int = 8000, name: str = "vpd",
                api_key: str | None = None, max_wait_ms: float = 5.0) -> ThreadingHTTPServer:
    """A ready (not yet serving) HTTP server; ``port=0`` picks a free port (see ``server_address``)."""
    endpoint = ToolboxEndpoint(toolbox, name=name, max_wait_ms=max_wait_ms)
    httpd = ThreadingHTTPServer((host, port), make_handler(endpoint, api_key=api_key))
    httpd.daemon_threads = True
    httpd.endpoint = endpoint  # type: ignore[attr-defined]
    return httpd
