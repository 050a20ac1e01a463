"""The record of one sandboxed execution, and the host's check of what a worker sent back."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from vpd.types import JSON, Trace, _Record

STATUSES = ("ok", "error", "timeout", "rejected", "killed")
#: Statuses a worker may report itself; ``timeout`` and ``killed`` are decided by the host only.
WORKER_STATUSES = frozenset({"ok", "error", "rejected"})
_MAX_PLAIN_DEPTH = 24
MAX_ERROR_CHARS = 2000


@dataclass(frozen=True, kw_only=True)
class ExecutionResult(_Record):
    """One program run.

    ``status``: ``ok`` (returned an answer), ``error`` (raised, or a syntax error: ``error``
    starts with ``SyntaxError``), ``timeout`` (host deadline hit, worker killed), ``rejected``
    (refused by the compile-time policy), ``killed`` (the worker died: memory, CPU limit, crash,
    protocol violation). ``answer`` is plain JSON data (patches are ``{"box": [x0, y0, x1, y1]}``,
    pixels, origin top-left). ``trace`` holds the tool calls the host served, ``trace.output`` the
    answer. ``stdout`` is the program's prints, capped. ``elapsed_s`` is wall time from dispatch to
    result; ``timings`` has ``compile_ms``, ``run_ms``, ``wait_ms`` (waiting for a free worker).
    """

    status: str
    answer: JSON = None
    error: str | None = None
    stdout: str = ""
    trace: Trace = field(default_factory=Trace)
    elapsed_s: float = 0.0
    timings: dict[str, float] = field(default_factory=dict)

    _nested = {"trace": Trace}

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def is_plain(value: Any, depth: int = 0) -> bool:
    """True if ``value`` is JSON data made of exact built-in types, at most 24 levels deep."""
    if depth > _MAX_PLAIN_DEPTH:
        return False
    t = type(value)
    if value is None or t in (bool, int, float, str):
        return True
    if t is list:
        return all(is_plain(v, depth + 1) for v in value)
    if t is dict:
        return all(type(k) is str and is_plain(v, depth + 1) for k, v in value.items())
    return False


def bounded_text(value: Any, limit: int) -> str:
    """``value`` if it is a str (cut to ``limit`` characters), else ''."""
    return value[:limit] if type(value) is str else ""
