"""Dense per-token targets for pretraining the vision encoder from scene records.

The student's image tokens form a ``grid x grid`` lattice (``grid = image_size // patch_size``);
the token of the cell holding an object's box centre is labelled with that object's colour, shape
and size (class 0 = no object centre in the cell; the larger object wins a shared cell) and,
where the head is wide enough, its **box** as four location bins ``y0, x0, y1, x1`` (the same
quantisation as the ``<locNNNN>`` tokens of :mod:`vpd.distill.loc_tokens`; empty cells ignored).
A linear head on the vision encoder's output (``VisionConfig.grid_head``) predicts them: a dense
auxiliary loss that makes the encoder see objects within a few hundred steps (where text targets
alone teach a small student only the answer prior) and, with the box groups, write *where* each
object is into the token that holds it — what ``detect`` must copy into location tokens. Used
only in pretraining (records with a ``scene``).

Cells index row-major: ``row * grid + col``, with ``col = floor(cx / width * grid)`` (pixels,
origin top-left). The head's width says which groups it has: :data:`HEAD_WIDTH` (attributes
only) or :func:`head_width` ``(bins)`` = attributes + ``4 * bins`` box logits.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from vpd.benchmarks.shapes import COLORS, SHAPES, SIZES
from vpd.distill.loc_tokens import quantise

#: Classes per attribute group (index 0 = no object): colour, shape, size.
GROUPS: tuple[int, ...] = (len(COLORS) + 1, len(SHAPES) + 1, len(SIZES) + 1)
HEAD_WIDTH = sum(GROUPS)
BOX_GROUPS = ("y0", "x0", "y1", "x1")
IGNORE = -1


def head_width(box_bins: int = 0) -> int:
    """Logits of a grid head with the attribute groups and, for ``box_bins`` > 0, the box groups."""
    return HEAD_WIDTH + len(BOX_GROUPS) * box_bins


def box_bins_of(width: int) -> int:
    """The location bins of a grid head ``width`` logits wide (0: attributes only)."""
    extra = width - HEAD_WIDTH
    if extra < 0 or extra % len(BOX_GROUPS):
        raise ValueError(f"a grid head of {width} logits is neither {HEAD_WIDTH} nor {HEAD_WIDTH} + 4 x bins")
    return extra // len(BOX_GROUPS)


def groups(box_bins: int = 0) -> tuple[int, ...]:
    """Classes per target column: the attribute groups, then four box groups of ``box_bins`` classes."""
    return GROUPS + ((box_bins,) * len(BOX_GROUPS) if box_bins else ())


def grid_targets(objects: Sequence[Mapping], width: float, height: float, grid: int, box_bins: int = 0
                 ) -> np.ndarray:
    """``[grid * grid, len(groups(box_bins))]`` int32 class ids of the object centred in each cell:
    colour, shape, size (0 = none) and, with ``box_bins``, the bins of ``y0, x0, y1, x1``
    (:data:`IGNORE` in cells without an object)."""
    out = np.zeros((grid * grid, len(groups(box_bins))), np.int32)
    out[:, len(GROUPS):] = IGNORE
    area = np.zeros(grid * grid)
    for o in objects:
        x0, y0, x1, y1 = o["bbox"]
        col = min(grid - 1, max(0, int((x0 + x1) / 2 / width * grid)))
        row = min(grid - 1, max(0, int((y0 + y1) / 2 / height * grid)))
        cell, a = row * grid + col, (x1 - x0) * (y1 - y0)
        if a > area[cell]:
            area[cell] = a
            out[cell, :len(GROUPS)] = (COLORS.index(o["color"]) + 1, SHAPES.index(o["shape"]) + 1,
                                       SIZES.index(o["size"]) + 1)
            if box_bins:
                out[cell, len(GROUPS):] = (quantise(y0, height, box_bins), quantise(x0, width, box_bins),
                                           quantise(y1, height, box_bins), quantise(x1, width, box_bins))
    return out


def ignored(grid: int, box_bins: int = 0) -> np.ndarray:
    """Targets of an image without scene records: every cell ignored."""
    return np.full((grid * grid, len(groups(box_bins))), IGNORE, np.int32)


def decode_boxes(logits: np.ndarray, grid: int, width: float, height: float, box_bins: int
                 ) -> list[tuple[int, tuple[float, float, float, float]]]:
    """The grid head read as a dense detector: ``[(cell, (x0, y0, x1, y1) pixels)]`` for every cell
    whose colour group predicts an object, the box from the argmax bins (bin centres)."""
    if not box_bins:
        return []
    start = HEAD_WIDTH
    bins = [logits[:, start + i * box_bins:start + (i + 1) * box_bins].argmax(-1) for i in range(len(BOX_GROUPS))]
    has = logits[:, :GROUPS[0]].argmax(-1) > 0
    out = []
    for cell in np.flatnonzero(has):
        y0, x0, y1, x1 = (int(b[cell]) for b in bins)
        out.append((int(cell), ((x0 + 0.5) * width / box_bins, (y0 + 0.5) * height / box_bins,
                                (x1 + 0.5) * width / box_bins, (y1 + 0.5) * height / box_bins)))
    return out
