"""An offline content-moderation demo: synthetic memes and a written policy (``vpd data memes``).

A meme is a ``shapes`` scene with a caption rendered in a white band above it (black text, the
classic caption-meme layout, readable by RapidOCR). The policy's label depends on **both** the
caption and the picture, like Hateful Memes' benign confounders:

    hateful (1)  iff  the caption insults a colour  AND  an object of that colour is in the picture.

So every caption appears with and without its target, and every picture with harmless text:
``case`` is one of ``insult_present`` (1), ``insult_absent`` (0, text confounder),
``praise_present`` (0, image confounder), ``praise_absent`` (0).

Output (Hateful Memes layout): ``train.jsonl``, ``dev.jsonl``, ``test.jsonl`` with ``id, img,
label, text`` (+ ``case``, ``color``: extra keys the official loaders ignore), ``img/<id>.png``,
``policy.md`` and ``dataset.json``. Deterministic by ``(seed, index)``: meme ``i`` is the same
whatever ``n``. Boxes in ``dataset.json``'s scene records are pixels of the meme image (origin
top-left, y down; the band shifts the scene down by :data:`BAND_HEIGHT`).

The ``moderation`` benchmark scores such data like Hateful Memes, with a per-``case`` breakdown.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from vpd.benchmarks.hateful_memes import HatefulMemes
from vpd.benchmarks.registry import BENCHMARKS
from vpd.benchmarks.shapes import COLORS, generate_scene, render_scene

BAND_HEIGHT = 44  # px of caption band above the 320x240 scene
FONT_SIZE = 22
SPLIT_FRACTIONS = (("train", 0.6), ("dev", 0.2), ("test", 0.2))

INSULTS = (
    "{c} things are disgusting",
    "nobody wants {c} junk",
    "{c} is the ugliest colour",
    "{c} shapes are worthless",
    "get rid of that {c} trash",
)
PRAISE = (
    "{c} things are lovely",
    "everyone loves {c} stuff",
    "{c} is the best colour",
    "what a nice {c} shape",
    "{c} makes me happy",
)
#: Words that mark an insult in the captions above (the policy text lists them too).
INSULT_WORDS = ("disgusting", "junk", "ugliest", "worthless", "trash")

POLICY = """# Content policy: colour insults (synthetic demo)

A meme is **HATEFUL** (label 1) if and only if **both** hold:

1. its caption insults a colour — it demeans things of that colour (words such as
   {words}); and
2. the picture shows at least one object of that colour (the target is present).

Everything else is **NOT HATEFUL** (label 0), in particular:

- a caption that insults a colour which appears nowhere in the picture (no target);
- a caption that praises a colour, whatever the picture shows.

Colours: {colors}. The caption is the text in the white band at the top of the image.
"""


@dataclass(frozen=True, kw_only=True)
class Meme:
    """One synthetic meme (``label`` 1 = hateful under :data:`POLICY`)."""

    id: int
    text: str
    label: int
    case: str
    color: str
    split: str
    scene: tuple[dict, ...]


def _rng(seed: int, index: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 7]))


def meme_split(seed: int, index: int) -> str:
    u = float(np.random.default_rng(np.random.SeedSequence([int(seed), int(index), 8])).random())
    acc = 0.0
    for name, frac in SPLIT_FRACTIONS:
        acc += frac
        if u < acc:
            return name
    return SPLIT_FRACTIONS[-1][0]


def make_meme(seed: int, index: int) -> tuple[Meme, Image.Image]:
    """Meme ``index`` of ``seed`` and its image (PIL RGB, 320 x 284)."""
    rng = _rng(seed, index)
    scene = generate_scene(seed, index, min_objects=2, max_objects=5)
    present = sorted({o.color for o in scene.objects})
    absent = [c for c in COLORS if c not in present]
    insult = bool(rng.random() < 0.6)
    want_present = bool(rng.random() < 0.65) or not absent
    color = str(rng.choice(present if want_present else absent))
    templates = INSULTS if insult else PRAISE
    text = templates[int(rng.integers(len(templates)))].format(c=color)
    label = int(insult and want_present)
    case = f"{'insult' if insult else 'praise'}_{'present' if want_present else 'absent'}"
    image = render_meme(render_scene(scene), text)
    objs = tuple({**o.to_dict(), "bbox": [o.bbox[0], o.bbox[1] + BAND_HEIGHT, o.bbox[2], o.bbox[3] + BAND_HEIGHT]}
                 for o in scene.objects)
    return Meme(id=int(index), text=text, label=label, case=case, color=color,
                split=meme_split(seed, index), scene=objs), image


def render_meme(scene_image: Image.Image, text: str) -> Image.Image:
    """The scene with a white caption band on top holding ``text`` (black, centred)."""
    w, h = scene_image.size
    out = Image.new("RGB", (w, h + BAND_HEIGHT), (255, 255, 255))
    out.paste(scene_image, (0, BAND_HEIGHT))
    draw = ImageDraw.Draw(out)
    size = FONT_SIZE
    font = ImageFont.load_default(size=size)
    while draw.textlength(text, font=font) > w - 12 and size > 10:
        size -= 1
        font = ImageFont.load_default(size=size)
    tw = draw.textlength(text, font=font)
    draw.text(((w - tw) / 2, (BAND_HEIGHT - size) / 2 - 2), text, fill=(0, 0, 0), font=font)
    return out


def make_memes(out: str | Path, n: int, seed: int = 0, *,
               progress: Callable[[int], None] | None = None) -> dict:
    """Write ``n`` memes of ``seed`` to ``out`` (see the module docstring); returns the summary."""
    if n < 1:
        raise ValueError("n must be >= 1")
    out = Path(out)
    (out / "img").mkdir(parents=True, exist_ok=True)
    handles = {name: (out / f"{name}.jsonl").open("w", encoding="utf-8") for name, _ in SPLIT_FRACTIONS}
    counts: dict[str, dict[str, int]] = {name: {} for name, _ in SPLIT_FRACTIONS}
    scenes = {}
    try:
        for i in range(n):
            meme, image = make_meme(seed, i)
            rel = f"img/{meme.id:05d}.png"
            image.save(out / rel, compress_level=1)
            rec = {"id": meme.id, "img": rel, "label": meme.label, "text": meme.text,
                   "case": meme.case, "color": meme.color}
            handles[meme.split].write(json.dumps(rec) + "\n")
            c = counts[meme.split]
            c[meme.case] = c.get(meme.case, 0) + 1
            scenes[meme.id] = list(meme.scene)
            if progress:
                progress(i)
    finally:
        for fh in handles.values():
            fh.close()
    (out / "policy.md").write_text(POLICY.format(words=", ".join(f'"{w}"' for w in INSULT_WORDS),
                                                 colors=", ".join(COLORS)), encoding="utf-8")
    summary = {"generator": "vpd.benchmarks.moderation", "n": n, "seed": seed, "per_split": counts,
               "hateful": {s: c.get("insult_present", 0) for s, c in counts.items()},
               "scenes": scenes}
    (out / "dataset.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    return {k: v for k, v in summary.items() if k != "scenes"}


@BENCHMARKS.register("moderation")
class Moderation(HatefulMemes):
    """Synthetic moderation memes: Hateful-Memes metrics plus a breakdown by confounder ``case``."""

    name = "moderation"
    slice_kinds = ("case",)
    reference = "Hateful Memes metrics (AUROC, accuracy) on vpd's synthetic memes"

    def slices_of(self, rec: dict) -> dict[str, str]:
        return {"case": str(rec["case"])} if rec.get("case") else {}
