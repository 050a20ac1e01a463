"""How answers and tool results are written in rationales (one convention for every rewriter).

Booleans are ``yes``/``no``; floats use 3 significant digits (as :mod:`vpd.trace_text`); integers
are written in full however large; a patch (``{"box": [x0, y0, x1, y1]}``, pixels, origin
top-left) is written as its four integers, as VPD writes boxes.
"""

from __future__ import annotations

from typing import Any


def answer_text(value: Any) -> str:
    """The plain-text form of a program answer or tool result."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value.is_integer() and abs(value) < 1e15:
            return str(int(value))
        return f"{value:.3g}"
    if isinstance(value, dict):
        if "box" in value and isinstance(value["box"], (list, tuple)) and len(value["box"]) >= 4:
            return box_text(value["box"])
        return ", ".join(f"{k}: {answer_text(v)}" for k, v in value.items())
    if isinstance(value, (list, tuple)):
        if len(value) >= 4 and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value[:4]) \
                and len(value) in (4, 6):
            return box_text(value)
        return ", ".join(answer_text(v) for v in value)
    return " ".join(str(value).split())


def box_text(box: Any) -> str:
    """Four integers ``"x0 y0 x1 y1"`` (pixels, origin top-left) from a Box or a sequence."""
    if hasattr(box, "ints"):
        return " ".join(str(v) for v in box.ints())
    return " ".join(str(int(round(float(v)))) for v in list(box)[:4])
