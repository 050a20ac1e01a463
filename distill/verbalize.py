"""Image verbalisation for LSKD: what an LLM reads instead of pixels.

:func:`verbalise` runs the tools on one image: a global caption, numbered regions from ``detect``
(ids ``0..n-1`` ordered left to right, then top to bottom, as LSKD's ``[k]``), a description of each
region from ``vqa`` on its crop (colour, shape, size …), and optional global QA pairs. Any tool
failure is recorded in ``errors`` and the verbalisation goes on without that fact.

Boxes are ``x0, y0, x1, y1`` in pixels of the full image, origin top-left.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from vpd.images import load_image
from vpd.types import Box

#: attribute -> question asked of each region's crop (shapes backend understands these).
DEFAULT_ATTRIBUTES: dict[str, str] = {
    "size": "What size is the object?",
    "color": "What color is the object?",
    "shape": "What shape is the object?",
}
DEFAULT_QUERIES: tuple[str, ...] = ("object",)
DEFAULT_QA: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Region:
    """A numbered region: ``id`` is LSKD's ``[k]``; ``attributes`` maps attribute -> vqa answer."""

    id: int
    box: Box
    name: str
    attributes: dict[str, str] = field(default_factory=dict)

    @property
    def description(self) -> str:
        """e.g. ``"small red cube"`` (attribute answers in order, then the name if no shape)."""
        words = [v for v in self.attributes.values() if v]
        if not any(k in self.attributes for k in ("shape", "name")):
            words.append(self.name)
        return " ".join(words) or self.name

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "box": [self.box.x0, self.box.y0, self.box.x1, self.box.y1, self.box.score],
                "name": self.name, "attributes": dict(self.attributes)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Region":
        b = list(d["box"])
        return cls(id=int(d["id"]), box=Box(x0=b[0], y0=b[1], x1=b[2], y1=b[3], score=b[4] if len(b) > 4 else 1.0,
                                            label=str(d.get("name", ""))),
                   name=str(d.get("name", "")), attributes={str(k): str(v) for k, v in (d.get("attributes") or {}).items()})


@dataclass(frozen=True, kw_only=True)
class Verbalisation:
    """Everything the tools said about one image (see the module docstring)."""

    image: str
    width: int
    height: int
    caption: str
    caption_source: str
    regions: tuple[Region, ...]
    qa: tuple[tuple[str, str], ...] = ()
    errors: tuple[str, ...] = ()

    def region(self, k: int) -> Region | None:
        for r in self.regions:
            if r.id == k:
                return r
        return None

    def text(self, *, only: Sequence[int] | None = None) -> str:
        """The LLM-facing text (LSKD style): caption, then ``[k] x0 y0 x1 y1: description`` lines."""
        lines = [f"Image: {self.caption}"]
        regions = [r for r in self.regions if only is None or r.id in set(only)]
        if regions:
            lines.append("Regions:")
            lines.extend(f"[{r.id}] {r.box.text()}: {r.description}" for r in regions)
        else:
            lines.append("Regions: none")
        for q, a in self.qa:
            lines.append(f"Q: {q} A: {a}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "width": self.width, "height": self.height, "caption": self.caption,
                "caption_source": self.caption_source, "regions": [r.to_dict() for r in self.regions],
                "qa": [list(p) for p in self.qa], "errors": list(self.errors)}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Verbalisation":
        return cls(image=str(d["image"]), width=int(d["width"]), height=int(d["height"]),
                   caption=str(d.get("caption", "")), caption_source=str(d.get("caption_source", "")),
                   regions=tuple(Region.from_dict(r) for r in d.get("regions", [])),
                   qa=tuple((str(q), str(a)) for q, a in d.get("qa", [])), errors=tuple(d.get("errors", [])))

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False)


def _err(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"


def _nms(boxes: list[Box], iou: float) -> list[Box]:
    kept: list[Box] = []
    for b in sorted(boxes, key=lambda b: -b.score):
        if all(b.iou(k) < iou for k in kept):
            kept.append(b)
    return kept


def _composed_caption(regions: Sequence[Region]) -> str:
    if not regions:
        return "An image with no detected objects."
    names = [r.description for r in regions]
    return f"An image with {len(regions)} object{'s' if len(regions) != 1 else ''}: " + ", ".join(names) + "."


def verbalise(image_path: str, toolbox: Any, *, queries: Sequence[str] = DEFAULT_QUERIES,
              attributes: Mapping[str, str] = DEFAULT_ATTRIBUTES, qa: Sequence[str] = DEFAULT_QA,
              max_regions: int = 12, nms_iou: float = 0.7) -> Verbalisation:
    """Verbalise one image with ``toolbox`` (a :class:`vpd.tools.toolbox.Toolbox`).

    Regions come from ``detect`` for each query (merged by NMS at ``nms_iou``, at most
    ``max_regions`` by score), described by ``vqa`` on each crop with the ``attributes``
    questions. Tool errors are recorded, never raised; an unreadable image raises
    :class:`vpd.images.ImageLoadError`.
    """
    image = load_image(image_path)
    errors: list[str] = []
    found: list[Box] = []
    for q in queries:
        try:
            found.extend(b if b.label else Box(x0=b.x0, y0=b.y0, x1=b.x1, y1=b.y1, score=b.score, label=q)
                         for b in toolbox.detect(image, q))
        except Exception as exc:
            errors.append(f"detect {q!r}: {_err(exc)}")
    boxes = [b for b in _nms(found, nms_iou) if b.width >= 1 and b.height >= 1][:max_regions]
    boxes.sort(key=lambda b: (round(b.x0), round(b.y0)))
    regions: list[Region] = []
    for k, b in enumerate(boxes):
        crop = image.crop(b.ints())
        attrs: dict[str, str] = {}
        for name, question in attributes.items():
            try:
                ans = " ".join(str(toolbox.vqa(crop, question)).split()).lower()
                if ans:
                    attrs[name] = ans
            except Exception as exc:
                errors.append(f"vqa [{k}] {name}: {_err(exc)}")
        regions.append(Region(id=k, box=b, name=b.label or "object", attributes=attrs))
    caption, source = "", "caption"
    try:
        caption = " ".join(str(toolbox.caption(image)).split())
    except Exception as exc:
        errors.append(f"caption: {_err(exc)}")
    if not caption:
        caption, source = _composed_caption(regions), "regions"
    pairs: list[tuple[str, str]] = []
    for q in qa:
        try:
            pairs.append((q, " ".join(str(toolbox.vqa(image, q)).split())))
        except Exception as exc:
            errors.append(f"vqa {q!r}: {_err(exc)}")
    return Verbalisation(image=str(image_path), width=image.width, height=image.height, caption=caption,
                         caption_source=source, regions=tuple(regions), qa=tuple(pairs), errors=tuple(errors))
