"""Typed errors of the tool layer. Programs see them as runtime errors with a clear message."""

from __future__ import annotations


class ToolError(RuntimeError):
    """A tool call failed (bad arguments, backend failure)."""


class UnsupportedQuery(ToolError):
    """The backend cannot answer this query (e.g. an unknown word); never a guess dressed as an answer."""


class ToolNotAvailable(ToolError):
    """No backend in the toolbox provides this tool."""


class MissingWeights(FileNotFoundError):
    """A backend's weights are not where its config says; the message names the key and the path."""

    def __init__(self, backend: str, key: str, path: str, hint: str = "") -> None:
        msg = (f"backend {backend!r}: weights not found at {path!r} "
               f"(set `{key}` in the tools config to a local path)")
        if hint:
            msg += f". {hint}"
        super().__init__(msg)
        self.backend, self.key, self.path = backend, key, path
