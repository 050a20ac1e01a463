"""The host side of tool calls: owns the pixels, runs the toolbox, records the trace.

A program (in a sandbox worker or in-process) sends requests ``{tool, image_id, box, args}``;
:class:`ToolHost` crops the image to ``box`` (pixels, origin top-left), runs the tool, maps result
boxes back to full-image pixels, records a :class:`~vpd.types.ToolCall`, and answers with plain
JSON. The trace is therefore what the host saw, never what the program claims.
"""

from __future__ import annotations

import itertools
import math
import time
from pathlib import Path
from typing import Any

from PIL import Image

from vpd.images import load_image
from vpd.tools.errors import ToolError
from vpd.tools.failures import backend_failure_text, is_backend_failure
from vpd.tools.specs import TOOLS
from vpd.tools.toolbox import Toolbox, boxes_from_json
from vpd.types import Box, ToolCall, Trace

MAX_CALLS_PER_PROGRAM = 500


class ToolHost:
    """Registers images, serves tool requests, keeps one trace per execution."""

    def __init__(self, toolbox: Toolbox, *, max_calls: int = MAX_CALLS_PER_PROGRAM) -> None:
        self.toolbox = toolbox
        self.max_calls = max_calls
        self._images: dict[str, Image.Image] = {}
        self._ids = itertools.count()
        self.calls: list[ToolCall] = []

    # -- images -------------------------------------------------------------------------
    def add_image(self, image: Image.Image | str | Path) -> tuple[str, int, int]:
        """Register an image; returns ``(image_id, width, height)``."""
        img = load_image(image)
        image_id = f"img{next(self._ids)}"
        self._images[image_id] = img
        return image_id, img.width, img.height

    def drop_image(self, image_id: str) -> None:
        self._images.pop(image_id, None)

    def reset_trace(self) -> None:
        self.calls = []

    def trace(self, output: Any = None) -> Trace:
        return Trace(calls=tuple(self.calls), output=output)

    # -- requests -----------------------------------------------------------------------
    def handle(self, request: dict[str, Any]) -> dict[str, Any]:
        """Serve one request. Returns ``{"ok": True, "result": …}`` or ``{"ok": False, "error": …}``."""
        try:
            return {"ok": True, "result": self.call(request.get("tool"), request.get("image_id"),
                                                    request.get("box"), request.get("args") or {})}
        except Exception as exc:  # a backend bug must not kill the host
            reply = {"ok": False, "error": f"{type(exc).__name__}: {exc}"}
            if is_backend_failure(exc):  # infrastructure, not the program: the worker raises ToolBackendError
                reply["backend_failure"] = True
            return reply

    def call(self, tool: Any, image_id: Any, box: Any, args: dict[str, Any]) -> Any:
        if not isinstance(tool, str) or tool not in TOOLS:
            try:
                TOOLS.get(str(tool))
            except KeyError as exc:  # UnknownNameError: "unknown tool 'x'; did you mean …"
                raise ToolError(str(exc)) from None
            raise ToolError(f"unknown tool {tool!r}")
        if len(self.calls) >= self.max_calls:
            raise ToolError(f"too many tool calls (limit {self.max_calls} per program)")
        spec = TOOLS.get(tool)
        crop_box: Box | None = None
        image: Image.Image | None = None
        ox = oy = 0
        if spec.needs_image:
            if image_id not in self._images:
                raise ToolError(f"unknown image id {image_id!r}")
            full = self._images[image_id]
            x0, y0, x1, y1 = _clip_box(box, full.width, full.height)
            crop_box = Box(x0=x0, y0=y0, x1=x1, y1=y1)
            if spec.whole_image:  # the backend sees the full image and the patch as `box`
                image = full
                args = {**args, "box": [x0, y0, x1, y1]}
            else:
                image = full if (x0, y0, x1, y1) == (0, 0, full.width, full.height) else full.crop((x0, y0, x1, y1))
                ox, oy = x0, y0
        t0 = time.perf_counter()
        error: str | None = None
        result: Any = None
        cached = False
        try:
            if spec.needs_image and (crop_box is not None and (crop_box.width == 0 or crop_box.height == 0)):
                raise ToolError(f"{tool} on an empty patch (box {crop_box.text()} has no area): no pixels to look at")
            result, cached = self.toolbox.call_json(tool, image, **args)
            _check_finite(tool, result)
            if spec.returns_boxes:
                result = [[r[0] + ox, r[1] + oy, r[2] + ox, r[3] + oy, r[4], r[5]] for r in result]
        except Exception as exc:
            error = backend_failure_text(exc) if is_backend_failure(exc) else f"{type(exc).__name__}: {exc}"
            raise
        finally:
            ms = (time.perf_counter() - t0) * 1000.0
            backend = self.toolbox.backends[tool].name if tool in self.toolbox.backends else ""
            self.calls.append(ToolCall(
                tool=tool, args=dict(args), box=crop_box, result=None if error else result,
                boxes=tuple(boxes_from_json(result)) if (spec.returns_boxes and not error) else (),
                error=error, ms=ms, backend=backend, cached=cached))
        return result


def _clip_box(box: Any, width: int, height: int) -> tuple[int, int, int, int]:
    if box is None:
        return 0, 0, width, height
    try:
        x0, y0, x1, y1 = (int(round(float(v))) for v in box)
    except (TypeError, ValueError):
        raise ToolError(f"bad box {box!r}") from None
    x0, x1 = sorted((max(0, min(width, x0)), max(0, min(width, x1))))
    y0, y1 = sorted((max(0, min(height, y0)), max(0, min(height, y1))))
    return x0, y0, x1, y1


def _check_finite(tool: str, value: Any) -> None:
    """ToolError when a result holds NaN or ±Infinity (JSON has no such numbers; a program must not
    compute with them as if they were measurements)."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ToolError(f"{tool} returned a non-finite number ({value!r})")
    if isinstance(value, (list, tuple)):
        for v in value:
            _check_finite(tool, v)
    elif isinstance(value, dict):
        for v in value.values():
            _check_finite(tool, v)
