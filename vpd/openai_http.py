"""OpenAI-shaped JSON over HTTP, shared by the servers vpd runs (``vpd tools serve``, ``vpd llm serve``).

An *endpoint* holds the protocol logic and knows nothing of HTTP:

* ``models() -> dict`` — the ``GET /v1/models`` list;
* ``health() -> dict`` — ``GET /health``;
* ``post(path, body) -> dict`` — a ``POST``; raises :class:`RequestError` (400), ``LookupError``
  (404: unknown route or model) or anything else (500, which clients retry).

Errors use OpenAI's shape ``{"error": {"message", "type", "code", "param"}}``. With an API key the
server requires ``Authorization: Bearer KEY`` (401 otherwise). Requests run on their own threads.
"""

from __future__ import annotations

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

MAX_BODY_BYTES = 32 << 20


class RequestError(ValueError):
    """A malformed request (HTTP 400)."""


class Endpoint(Protocol):
    def models(self) -> dict[str, Any]: ...

    def health(self) -> dict[str, Any]: ...

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]: ...


def error_payload(status: int, message: str, kind: str) -> tuple[int, dict[str, Any]]:
    """``(status, {"error": …})`` in OpenAI's shape."""
    return status, {"error": {"message": message, "type": kind, "code": None, "param": None}}


def route(path: str) -> str:
    """``"/v1/completions/"`` -> ``"/completions"``: the path without ``/v1`` and trailing slashes."""
    path = path.split("?", 1)[0].rstrip("/")
    return path[3:] if path.startswith("/v1/") else path


def make_handler(endpoint: Endpoint, *, api_key: str | None = None,
                 client_errors: tuple[type[BaseException], ...] = (),
                 server_version: str = "vpd-openai/1") -> type[BaseHTTPRequestHandler]:
    """A request handler class for ``endpoint``; ``client_errors`` are further 400s."""
    bad_request = (RequestError, json.JSONDecodeError, *client_errors)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def version_string(self) -> str:
            return server_version

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
            return not api_key or self.headers.get("Authorization", "") == f"Bearer {api_key}"

        def do_GET(self) -> None:
            if not self._authorised():
                return self._send(*error_payload(401, "invalid API key", "authentication_error"))
            if route(self.path) == "/models":
                return self._send(200, endpoint.models())
            if route(self.path) == "/health":
                return self._send(200, endpoint.health())
            self._send(*error_payload(404, f"no route {self.path}", "invalid_request_error"))

        def do_POST(self) -> None:
            if not self._authorised():
                return self._send(*error_payload(401, "invalid API key", "authentication_error"))
            try:
                length = int(self.headers.get("Content-Length") or 0)
                if length > MAX_BODY_BYTES:
                    raise RequestError(f"request body over {MAX_BODY_BYTES} bytes")
                body = json.loads(self.rfile.read(length) or b"{}")
                if not isinstance(body, dict):
                    raise RequestError("request body must be a JSON object")
                self._send(200, endpoint.post(self.path, body))
            except bad_request as exc:
                self._send(*error_payload(400, f"{type(exc).__name__}: {exc}", "invalid_request_error"))
            except LookupError as exc:
                self._send(*error_payload(404, str(exc.args[0] if exc.args else exc), "invalid_request_error"))
            except Exception as exc:  # a backend bug: 500 (clients may retry), the server lives on
                self._send(*error_payload(500, f"{type(exc).__name__}: {exc}", "server_error"))

    return Handler


def make_http_server(endpoint: Endpoint, *, host: str = "127.0.0.1", port: int = 8000, api_key: str | None = None,
                     client_errors: tuple[type[BaseException], ...] = (),
                     server_version: str = "vpd-openai/1") -> ThreadingHTTPServer:
    """A ready (not yet serving) threaded server; ``port=0`` picks a free port (``server_address``).
    The endpoint is reachable as ``server.endpoint``."""
    httpd = ThreadingHTTPServer((host, port), make_handler(endpoint, api_key=api_key, client_errors=client_errors,
                                                           server_version=server_version))
    httpd.daemon_threads = True
    httpd.endpoint = endpoint  # type: ignore[attr-defined]
    return httpd
