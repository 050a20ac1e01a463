"""Tool backends in Ray actors: :class:`ToolActorImpl` hosts a Toolbox (models loaded once per actor)
and serves whole batches of tool calls; :class:`ActorBackend` is its client inside a shard task, a
:class:`~vpd.tools.backend.Backend` that forwards each batch to the actor, and :func:`actor_toolbox`
wraps those backends in the batching :class:`~vpd.tools.server.ToolServer`, so the concurrent tool
calls of a shard's sandbox workers travel to the GPU together. Results cross the Ray boundary as
JSON; a failed input comes back as ``{"__error__": message}`` and is raised here as a ToolError.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from vpd.tools.backend import Backend
from vpd.tools.errors import ToolError
from vpd.tools.specs import TOOLS
from vpd.tools.toolbox import boxes_from_json


class ToolActorImpl:
    """Hosts a Toolbox (models loaded once per actor) and serves batched tool calls from tasks."""

    def __init__(self, spec: str) -> None:
        from vpd.tools import load

        self.toolbox = load(spec)
        self.calls = 0
        self.batches = 0

    def describe(self) -> dict[str, Any]:
        return {t: {"tag": b.cache_tag(), "max_batch": b.max_batch, "batchable": sorted(b.batchable),
                    "backend": b.name, "analysed": sorted(b.analysed),
                    "answer_context": b.answer_context() if b.analysed else {}}
                for t, b in self.toolbox.backends.items()}

    def analyse_batch(self, tool: str, images: list[np.ndarray]) -> list[Any]:
        """The image analyses of ``tool``'s backend (JSON), ``{"__error__": message}`` for a failure."""
        from PIL import Image

        backend = self.toolbox.backend_for(tool)
        self.calls += len(images)
        self.batches += 1
        return [_error_json(v) if isinstance(v, BaseException) else v
                for v in backend.analyse_batch([Image.fromarray(a) for a in images])]

    def run_batch(self, tool: str, images: list[np.ndarray | None], args: list[dict[str, Any]]) -> list[Any]:
        """JSON results per input; an input that fails yields ``{"__error__": message}``."""
        from PIL import Image

        from vpd.tools.toolbox import to_json_result

        backend = self.toolbox.backend_for(tool)
        pil = [None if a is None else Image.fromarray(a) for a in images]
        self.calls += len(pil)
        self.batches += 1
        out: list[Any] = []
        for value in backend.run_batch(tool, pil, args):
            if isinstance(value, BaseException):
                out.append(_error_json(value))
            else:
                out.append(to_json_result(tool, value))
        return out

    def stats(self) -> dict[str, int]:
        return {"calls": self.calls, "batches": self.batches, "pid": os.getpid()}


def _error_json(exc: BaseException) -> dict[str, str]:
    return {"__error__": f"{type(exc).__name__}: {exc}"}


class ActorBackend(Backend):
    """A backend whose tool runs in a Ray actor (one per node or per GPU); batches travel whole.

    Its cache tag is the real backend's, so tool-cache entries are shared with the local engine.
    """

    name = "ray_actor"

    def __init__(self, actor: Any, tool: str, info: dict[str, Any]) -> None:
        super().__init__()
        self.actor, self.tool, self.info = actor, tool, info
        self.provides = frozenset({tool})  # type: ignore[misc]
        self.batchable = frozenset({tool})  # type: ignore[misc]
        self.max_batch = int(info.get("max_batch", 1)) or 1  # type: ignore[misc]
        # image analyses stay shared through the actor: analyse there (the model pass), cache and
        # answer here (answer_from needs only the analysis and the backend's JSON answer context)
        self.analysed = frozenset(info.get("analysed", ())) & {tool}  # type: ignore[misc]
        self._real: type[Backend] | None = None
        if self.analysed:
            import vpd.tools.backends  # noqa: F401  (registers the built-in backends)
            from vpd.registry import UnknownNameError
            from vpd.tools.backend import BACKENDS

            try:
                self._real = BACKENDS.get(str(info["backend"]))
            except UnknownNameError:  # a plug-in backend not imported here: cache per call instead
                self.analysed = frozenset()  # type: ignore[misc]

    def uses_analysis(self, tool: str, args: Any) -> bool:  # type: ignore[override]
        return self._real is not None and tool in self.analysed and self._real.uses_analysis(tool, args)

    def analyse_batch(self, images: list[Any]) -> list[Any]:
        import ray

        arrays = [np.asarray(im) for im in images]
        return [self._error(v) or v for v in ray.get(self.actor.analyse_batch.remote(self.tool, arrays))]

    def analyse(self, image: Any) -> Any:
        value = self.analyse_batch([image])[0]
        if isinstance(value, Exception):
            raise value
        return value

    def answer_context(self) -> dict[str, Any]:
        return dict(self.info.get("answer_context") or {})

    def answer(self, tool: str, analysis: Any, **args: Any) -> Any:
        """Answered here, from the cached analysis: no round trip to the (possibly busy) actor."""
        if self._real is None:
            raise ToolError(f"tool {tool!r} of the Ray actor is not answered from an image analysis")
        return self._real.answer_from(self.answer_context(), tool, analysis, **args)

    @staticmethod
    def _error(value: Any) -> Exception | None:
        if isinstance(value, dict) and "__error__" in value:
            return ToolError(value["__error__"])
        return None

    def cache_tag(self) -> str:
        return str(self.info.get("tag", f"ray:{self.tool}"))

    def _decode(self, value: Any) -> Any:
        err = self._error(value)
        if err is not None:
            return err
        return boxes_from_json(value) if TOOLS.get(self.tool).returns_boxes else value

    def run_batch(self, tool: str, images: list[Any], args: list[dict[str, Any]]) -> list[Any]:
        import ray

        arrays = [None if im is None else np.asarray(im) for im in images]
        return [self._decode(v) for v in ray.get(self.actor.run_batch.remote(tool, arrays, args))]

    def run(self, tool: str, image: Any, **args: Any) -> Any:
        value = self.run_batch(tool, [image], [args])[0]
        if isinstance(value, Exception):
            raise value
        return value


def actor_toolbox(actor: Any, cache: Any = None, share_analyses: bool = True) -> Any:
    """A batching ToolServer whose backends forward to ``actor`` (the caller closes it)."""
    import ray

    from vpd.tools.server import ToolServer
    from vpd.tools.toolbox import Toolbox

    info = ray.get(actor.describe.remote())
    backends = {t: ActorBackend(actor, t, i) for t, i in info.items()}
    return ToolServer(Toolbox(backends, cache=cache, share_analyses=share_analyses), max_wait_ms=5.0)

