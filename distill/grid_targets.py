"""Dense per-token targets for pretraining the vision encoder from scene records.

The student's image tokens form a ``grid x grid`` lattice (``grid = image_size // patch_size``);
the token of the cell holding an object's box centre is labelled with that object's colour, shape
and size (class 0 = no object centre in the cell; the larger object wins a shared cell). A linear
head on the vision encoder's output (``VisionConfig.grid_head``) predicts them: a dense auxiliary
loss that makes the encoder see objects within a few hundred steps, where text targets alone
teach a small student only the answer prior. Used only in pretraining (records with a ``scene``).

Cells index row-major: ``row * grid + col``, with ``col = floor(cx / width * grid)`` (pixels,
origin top-left).
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from vpd.benchmarks.shapes import COLORS, SHAPES, SIZES

#: Classes per group (index 0 = no object): colour, shape, size.
GROUPS: tuple[int, ...] = (len(COLORS) + 1, len(SHAPES) + 1, len(SIZES) + 1)
HEAD_WIDTH = sum(GROUPS)
IGNORE = -1


def grid_targets(objects: Sequence[Mapping], width: float, height: float, grid: int) -> np.ndarray:
    """``[grid * grid, 3]`` int32 class ids (colour, shape, size) of the object centred in each cell."""
    out = np.zeros((grid * grid, len(GROUPS)), np.int32)
    area = np.zeros(grid * grid)
    for o in objects:
        x0, y0, x1, y1 = o["bbox"]
        col = min(grid - 1, max(0, int((x0 + x1) / 2 / width * grid)))
        row = min(grid - 1, max(0, int((y0 + y1) / 2 / height * grid)))
        cell, a = row * grid + col, (x1 - x0) * (y1 - y0)
        if a > area[cell]:
            area[cell] = a
            out[cell] = (COLORS.index(o["color"]) + 1, SHAPES.index(o["shape"]) + 1, SIZES.index(o["size"]) + 1)
    return out


def ignored(grid: int) -> np.ndarray:
    """Targets of an image without scene records: every cell ignored."""
    return np.full((grid * grid, len(GROUPS)), IGNORE, np.int32)
