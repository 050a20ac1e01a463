"""PaliGemma-style location tokens: a box as four ``<locNNNN>`` tokens.

Convention (as PaliGemma's detection output): ``<loc{y0}><loc{x0}><loc{y1}><loc{x1}> label``, each
coordinate normalised by the image height (y) or width (x) and quantised into ``bins`` equal bins,
``0 .. bins-1``. PaliGemma uses 1024 bins; our small students use :data:`DEFAULT_BINS` (64: 5 px
on a 320 px wide ``shapes`` image). Several detections are joined with ``" ; "``; no detection is
the word ``"none"``.

Boxes are ``(x0, y0, x1, y1)`` in pixels, origin top-left, y down.
"""

from __future__ import annotations

import re
from typing import Sequence

DEFAULT_BINS = 64
NONE_TEXT = "none"
_LOC = re.compile(r"<loc(\d{4})>")
_DETECTION = re.compile(r"((?:<loc\d{4}>){4})\s*([^;<]*)")

Box = tuple[float, float, float, float]


def loc_token(index: int) -> str:
    """The token of bin ``index`` (``<loc0007>``)."""
    return f"<loc{index:04d}>"


def loc_vocabulary(bins: int = DEFAULT_BINS) -> list[str]:
    """All location tokens, bin order."""
    return [loc_token(i) for i in range(bins)]


def quantise(value: float, extent: float, bins: int) -> int:
    """The bin ``0 .. bins-1`` of a coordinate ``value`` in ``[0, extent]`` pixels."""
    return min(bins - 1, max(0, int(value / max(extent, 1e-9) * bins)))


def _centre(index: int, extent: float, bins: int) -> float:
    return (index + 0.5) * extent / bins


def box_to_loc(box: Sequence[float], width: float, height: float, bins: int = DEFAULT_BINS) -> str:
    """``(x0, y0, x1, y1)`` pixels -> ``"<locY0><locX0><locY1><locX1>"``."""
    x0, y0, x1, y1 = box
    return "".join(loc_token(i) for i in (quantise(y0, height, bins), quantise(x0, width, bins),
                                          quantise(y1, height, bins), quantise(x1, width, bins)))


def detections_text(items: Sequence[tuple[Sequence[float], str]], width: float, height: float,
                    bins: int = DEFAULT_BINS) -> str:
    """``[(box, label), …]`` -> ``"<loc…>×4 label ; …"`` (``"none"`` when empty)."""
    if not items:
        return NONE_TEXT
    return " ; ".join(f"{box_to_loc(b, width, height, bins)} {label}".strip() for b, label in items)


def parse_detections(text: str, width: float, height: float, bins: int = DEFAULT_BINS
                     ) -> list[tuple[Box, str]]:
    """Boxes (pixels, bin centres) and labels decoded from model output; malformed pieces are skipped."""
    out: list[tuple[Box, str]] = []
    for locs, label in _DETECTION.findall(text):
        y0, x0, y1, x1 = (int(v) for v in _LOC.findall(locs))
        if max(y0, x0, y1, x1) >= bins:
            continue
        box = (_centre(x0, width, bins), _centre(y0, height, bins), _centre(x1, width, bins),
               _centre(y1, height, bins))
        if box[2] > box[0] and box[3] > box[1]:
            out.append((box, " ".join(label.split())))
    return out
