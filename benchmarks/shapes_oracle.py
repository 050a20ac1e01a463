"""An *oracle* toolbox for the ``shapes`` world: perception read from the scene records.

**For failure attribution only** (:mod:`vpd.benchmarks.shapes_attribution`): it answers a
program's tool calls from the scene's ground truth, so re-running a failed program on it tells a
tool (perception) error from a logic error. It must never verify a program, label a trace or feed
training: it reads the labels. Nothing registers it — it is not a backend name, ``vpd synth
--tools`` cannot reach it, and ``tests/test_oracle_isolation.py`` checks that the synth path never
imports or builds it.

Answers use the ``shapes`` backend's own answer logic (:mod:`vpd.tools.backends.shapes`) over the
scene's objects, so the *only* difference from the real toolbox is perception: each object's true
colour, shape and size, and its box (the amodal box clipped to the patch). An object is in a patch
when at least ``MIN_INSIDE`` of its box lies inside it. Boxes are pixels, origin top-left.
"""

from __future__ import annotations

from typing import Any, ClassVar, Mapping, Sequence

from PIL import Image

from vpd.tools.backends.shapes import ShapesBackend, _FROM_OBJECTS
from vpd.tools.backends.shapes_detect import DetectedObject
from vpd.tools.errors import ToolNotAvailable
from vpd.tools.host import ToolHost, _clip_box
from vpd.tools.specs import TOOLS
from vpd.tools.toolbox import Toolbox, to_json_result
from vpd.tools.cache_keys import with_defaults

#: Share of an object's box that must lie inside a patch for the oracle to see it there.
MIN_INSIDE = 0.5


class _OracleTag:
    """Stands where a backend would for the oracle's tools (the trace records ``backend="oracle"``)."""

    name: ClassVar[str] = "oracle"

    def cache_tag(self) -> str:
        return "oracle:1:-:"

    def close(self) -> None:
        return None


def objects_in(scene: Sequence[Mapping[str, Any]], patch: tuple[int, int, int, int]) -> list[DetectedObject]:
    """The scene's objects (records with shape/color/size/bbox) seen in ``patch`` = (x0, y0, x1, y1),
    boxes in the patch's pixels, sorted like the detector's output (left to right, then top)."""
    px0, py0, px1, py1 = patch
    out = []
    for rec in scene:
        x0, y0, x1, y1 = (int(v) for v in rec["bbox"])
        ix0, iy0, ix1, iy1 = max(x0, px0), max(y0, py0), min(x1, px1), min(y1, py1)
        inside = max(0, ix1 - ix0) * max(0, iy1 - iy0)
        if inside <= 0 or inside < MIN_INSIDE * (x1 - x0) * (y1 - y0):
            continue
        out.append(DetectedObject(color=str(rec["color"]), shape=str(rec["shape"]), size=str(rec["size"]),
                                  box=(ix0 - px0, iy0 - py0, ix1 - px0, iy1 - py0), area=int(inside), score=1.0))
    out.sort(key=lambda o: (o.box[0], o.box[1]))
    return out


class OracleToolbox(Toolbox):
    """The ``shapes`` tools answered from ``scene`` (one example's records); other tools (e.g.
    ``llm_query``) go to ``base`` when given. Build one per program run: :class:`OracleHost` sets
    :attr:`patch` before each call."""

    def __init__(self, scene: Sequence[Mapping[str, Any]], base: Toolbox | None = None) -> None:
        tag = _OracleTag()
        backends: dict[str, Any] = dict(base.backends) if base is not None else {}
        backends.update({t: tag for t in ShapesBackend.provides})
        super().__init__(backends)
        self.scene = [dict(r) for r in scene]
        self.base = base
        self.patch: tuple[int, int, int, int] | None = None

    def call_json(self, tool: str, image: Any, **args: Any) -> tuple[Any, bool]:
        if tool not in ShapesBackend.provides:
            if self.base is None:
                raise ToolNotAvailable(f"the oracle toolbox has no tool {tool!r}")
            return self.base.call_json(tool, image, **args)
        self.stats["calls"] += 1
        args = with_defaults(TOOLS.get(tool).default_args, args)
        img = image if isinstance(image, Image.Image) else None
        patch = self.patch or (0, 0, img.width if img else 10**6, img.height if img else 10**6)
        if tool == "depth":  # a whole-image tool: the patch comes as its box argument
            box = args.pop("box", None)
            if box is not None:
                patch = tuple(int(v) for v in box)  # type: ignore[assignment]
        value = _FROM_OBJECTS[tool](objects_in(self.scene, patch), **args)  # type: ignore[arg-type]
        return to_json_result(tool, value), False

    def close(self) -> None:  # the base toolbox belongs to the caller
        return None


class OracleHost(ToolHost):
    """A :class:`ToolHost` that tells its :class:`OracleToolbox` which patch each call is about."""

    def call(self, tool: Any, image_id: Any, box: Any, args: dict[str, Any]) -> Any:
        tb = self.toolbox
        if isinstance(tb, OracleToolbox):
            full = self._images.get(image_id)
            tb.patch = _clip_box(box, full.width, full.height) if full is not None else None
        return super().call(tool, image_id, box, args)
