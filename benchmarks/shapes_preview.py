"""A contact sheet of a shapes dataset: the first scenes with their ground-truth boxes and labels."""

from __future__ import annotations

import json
from pathlib import Path

from PIL import Image, ImageDraw


def contact_sheet(dataset: str | Path, out: str | Path, *, n: int = 12, cols: int = 4) -> Path:
    """Draw the first ``n`` scenes of ``dataset`` (a folder with examples.jsonl) into ``out`` (PNG).

    Boxes are drawn from the ``scene`` records (pixels, origin top-left); one question per scene is
    printed under its image.
    """
    dataset, out = Path(dataset), Path(out)
    seen: dict[str, dict] = {}
    with (dataset / "examples.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            seen.setdefault(rec["image"], rec)
            if len(seen) >= n:
                break
    if not seen:
        raise ValueError(f"no examples in {dataset}")
    tiles = []
    for rel, rec in seen.items():
        img = Image.open(dataset / rel).convert("RGB")
        d = ImageDraw.Draw(img)
        for o in rec.get("scene") or []:
            x0, y0, x1, y1 = o["bbox"]
            d.rectangle((x0, y0, x1 - 1, y1 - 1), outline=(0, 0, 0))
            d.text((x0, max(0, y0 - 10)), f"{o['size'][0]} {o['color']} {o['shape']}", fill=(0, 0, 0))
        tile = Image.new("RGB", (img.width, img.height + 28), (255, 255, 255))
        tile.paste(img, (0, 0))
        td = ImageDraw.Draw(tile)
        td.text((4, img.height + 2), rec["question"][:60], fill=(0, 0, 0))
        td.text((4, img.height + 14), f"-> {rec['answer']}  [{rec['qtype']}, {rec.get('split', '')}]", fill=(0, 0, 160))
        tiles.append(tile)
    w, h = tiles[0].size
    rows = (len(tiles) + cols - 1) // cols
    sheet = Image.new("RGB", (w * min(cols, len(tiles)), h * rows), (255, 255, 255))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % cols) * w, (i // cols) * h))
    out.parent.mkdir(parents=True, exist_ok=True)
    sheet.save(out)
    return out
