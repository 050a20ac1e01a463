"""Deny by default: the host's check of a worker's tool request before anything serves it.

A sandboxed program reaches tools only through ``call`` frames; :func:`validate_call` accepts a frame
only when it names a registered tool, an image id (or none), a finite 4-number box (or none) and
keyword arguments that the tool's signature declares, each a plain JSON value of bounded size.
Anything else is a ``ValueError`` that the program sees as a failed tool call. Not covered here:
whether the image id is known, the call limit and the argument values' meaning (the job's
:class:`~vpd.tools.host.ToolHost` and the tool backend check those).
"""

from __future__ import annotations

import json
import math
from typing import Any

from vpd.sandbox.result import is_plain
from vpd.tools.specs import TOOLS

_MAX_ARG_CHARS = 100_000


def _allowed_args(tool: str) -> frozenset[str]:
    sig = TOOLS.get(tool).signature
    inner = sig[sig.index("(") + 1: sig.rindex(")")]
    names = [p.split(":")[0].strip() for p in inner.split(",") if p.strip()]
    return frozenset(n for n in names if n and n != "image")


def validate_call(msg: dict[str, Any]) -> dict[str, Any]:
    """Check a worker's tool request; returns ``{tool, image_id, box, args}`` or raises ValueError."""
    tool = msg.get("tool")
    if type(tool) is not str or tool not in TOOLS:
        raise ValueError(f"unknown tool {tool!r}"[:200])
    image_id = msg.get("image_id")
    if image_id is not None and type(image_id) is not str:
        raise ValueError("bad image id")
    box = msg.get("box")
    if box is not None:
        if (type(box) is not list or len(box) != 4
                or not all(type(v) in (int, float) and math.isfinite(v) for v in box)):
            raise ValueError("bad box")
    args = msg.get("args")
    if type(args) is not dict:
        raise ValueError("bad tool arguments")
    allowed = _allowed_args(tool)
    for key, value in args.items():
        if key not in allowed:
            raise ValueError(f"tool {tool!r} takes no argument {key!r}"[:200])
        if not is_plain(value) or len(json.dumps(value)) > _MAX_ARG_CHARS:
            raise ValueError(f"bad value for argument {key!r}")
    return {"tool": tool, "image_id": image_id, "box": box, "args": args}

