"""Drawing LSKD regions on images: boxes in a fixed colour order, each labelled with its ``[k]`` id.

LSKD trains on images with the referenced regions drawn on them, so the model sees which box
``[k]`` means. :func:`shuffle_regions` renumbers regions in a random order (and rewrites every
``[k]`` in the text) so a model cannot learn ids from position. Boxes: ``x0, y0, x1, y1`` pixels,
origin top-left.
"""

from __future__ import annotations

import hashlib
import random
import re
from pathlib import Path
from typing import Any, Sequence

from PIL import Image, ImageDraw, ImageFont

from vpd.images import load_image
from vpd.distill.lskd import image_file_name

#: Region colours in drawing order (region i gets PALETTE[i % len]); high-contrast, colour-blind aware.
PALETTE: tuple[tuple[int, int, int], ...] = (
    (230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180),
    (70, 240, 240), (240, 50, 230), (210, 245, 60), (250, 190, 190), (0, 128, 128),
)
_REF = re.compile(r"\[(\d{1,3})\]")


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # older Pillow
        return ImageFont.load_default()


def draw_regions(image: Image.Image | str | Path, references: Sequence[dict[str, Any]], *,
                 width: int | None = None) -> Image.Image:
    """A copy of ``image`` with each reference's boxes drawn in colour order and tagged ``[name]``.

    ``references`` are LSKD references ``{"name": "k", "boxes": [[x0, y0, x1, y1], ...]}``.
    """
    img = load_image(image).copy()
    draw = ImageDraw.Draw(img)
    line = width or max(1, round(min(img.size) / 120))
    font = _font(max(9, round(min(img.size) / 22)))
    for i, ref in enumerate(references):
        color = PALETTE[i % len(PALETTE)]
        for box in ref.get("boxes", []):
            x0, y0, x1, y1 = (float(v) for v in list(box)[:4])
            draw.rectangle([x0, y0, x1, y1], outline=color, width=line)
            tag = f"[{ref.get('name', i)}]"
            tb = draw.textbbox((0, 0), tag, font=font)
            tw, th = tb[2] - tb[0], tb[3] - tb[1]
            ty = y0 - th - 3 if y0 - th - 3 >= 0 else y0
            draw.rectangle([x0, ty, x0 + tw + 4, ty + th + 3], fill=color)
            draw.text((x0 + 2, ty), tag, fill=(255, 255, 255), font=font)
    return img


def shuffle_regions(record: dict[str, Any], seed: int | str = 0) -> dict[str, Any]:
    """A copy of an LSKD record with region ids renumbered 0..n-1 in a seeded random order.

    Rewrites ``region``, ``region_all``, ``references`` names and every ``[k]`` in the token lists
    (``[k]`` one-element lists) and in ``text`` fields.
    """
    ids = [int(r["name"]) for r in record.get("references", [])]
    for k in record.get("region_all", []):
        if int(k) not in ids:
            ids.append(int(k))
    rng = random.Random(hashlib.sha1(f"{seed}:{record.get('index', '')}:{image_file_name(record.get('image', ''))}".encode()).hexdigest())
    new = list(range(len(ids)))
    rng.shuffle(new)
    mapping = dict(zip(ids, new))

    def tok(tokens: Any) -> Any:
        if not isinstance(tokens, list):
            return tokens
        return [[mapping.get(int(k), int(k)) for k in t] if isinstance(t, list) else t for t in tokens]

    def txt(s: str) -> str:
        return _REF.sub(lambda m: f"[{mapping.get(int(m.group(1)), int(m.group(1)))}]", s)

    out = dict(record)
    out["region"] = [mapping.get(int(k), int(k)) for k in record.get("region", [])]
    out["region_all"] = [mapping.get(int(k), int(k)) for k in record.get("region_all", [])]
    out["references"] = sorted(({**r, "name": str(mapping[int(r["name"])])} for r in record.get("references", [])),
                               key=lambda r: int(r["name"]))
    for key in ("question", "answer", "rationale"):
        out[key] = tok(record.get(key))
    if isinstance(record.get("text"), dict):
        out["text"] = {k: txt(str(v)) for k, v in record["text"].items()}
    out["region_map"] = {str(k): v for k, v in mapping.items()}
    return out


def save_region_image(record: dict[str, Any], folder: str | Path) -> str:
    """Draw ``record``'s references on its image and save a PNG under ``folder``; returns the path.

    The file name is a hash of the image and the references, so identical drawings are shared.
    """
    key = hashlib.sha1(repr((record["image"], [(r["name"], r["boxes"]) for r in record.get("references", [])]))
                       .encode()).hexdigest()[:16]
    path = Path(folder) / f"{key}.png"
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        draw_regions(record["image"], record.get("references", [])).save(path)
    return str(path.resolve())
