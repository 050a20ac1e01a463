"""Generic pretraining tasks built from ``shapes`` scene records — the miniature of PaliGemma's
pretraining mixture, where the student learns to *see* before it is instruction-tuned.

Tasks (registered in :data:`PRETRAIN_TASKS`; prefix -> suffix):

* ``caption``  — ``"caption en"`` -> ``"3 objects: a large red cube, a small blue sphere and a large
  green cylinder."`` (objects left to right by box centre);
* ``detect``   — ``"detect red cube"`` / ``"detect cube"`` / ``"detect red object"`` / ``"detect
  large cube"`` -> PaliGemma location tokens, ``"<locY0><locX0><locY1><locX1> red cube ; …"``
  (:mod:`vpd.distill.loc_tokens`), left to right, ``"none"`` when absent;
* ``boxes``    — ``"boxes red cube"`` -> the same boxes as pixel integers ``"12 40 36 64 ; …"`` (the
  form rationales use: ``x0 y0 x1 y1``, origin top-left);
* ``describe`` — ``"describe <loc…>×4"`` (one object's box) -> ``"large red cube"``;
* ``find``     — ``"find red object"`` -> ``"a large red cube and a small red sphere"`` (every object
  the phrase selects, named in full, left to right; ``"none"`` when absent): ``detect`` answered in
  words, so the decoder learns to bind a phrase to image tokens without having to emit ``<loc>`` bins.

None of them is an evaluation question template (counting, spatial, compare, choice questions):
those are what instruction tuning teaches; :func:`assert_not_eval_templates` checks a record list.
Scenes: only the ``train`` split of a dataset is used (:func:`pretrain_records` refuses others).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from vpd.distill.loc_tokens import DEFAULT_BINS, NONE_TEXT, box_to_loc, detections_text
from vpd.registry import Registry
from vpd.wording import join_and

#: Prefix/suffix record builder: (objects, image width, height, rng, bins) -> [(prefix, suffix)].
TaskBuilder = Callable[[list[dict], int, int, np.random.Generator, int], list[tuple[str, str]]]
PRETRAIN_TASKS: Registry[TaskBuilder] = Registry("pretraining task")
DEFAULT_TASKS: dict[str, int] = {"caption": 1, "detect": 3, "boxes": 2, "describe": 2}  # records per scene


def parse_tasks(spec: str) -> dict[str, int]:
    """``"caption=1,detect=3"`` -> ``{"caption": 1, "detect": 3}`` (records per scene)."""
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        name, _, n = part.partition("=")
        out[name.strip()] = int(n) if n else 1
    return out


def _left_to_right(objects: Sequence[dict]) -> list[dict]:
    return sorted(objects, key=lambda o: ((o["bbox"][0] + o["bbox"][2]) / 2, (o["bbox"][1] + o["bbox"][3]) / 2))


def referring_phrase(objects: Sequence[dict], vocab: dict[str, Sequence[str]], rng: np.random.Generator
             ) -> tuple[str, Callable[[dict], bool]]:
    """A referring phrase (present or absent, 3:1) and the predicate selecting its objects."""
    kind = ("color shape", "shape", "color", "size shape")[int(rng.integers(4))]
    if rng.random() < 0.75:
        o = objects[int(rng.integers(len(objects)))]
        color, shape, size = o["color"], o["shape"], o["size"]
    else:
        color = vocab["color"][int(rng.integers(len(vocab["color"])))]
        shape = vocab["shape"][int(rng.integers(len(vocab["shape"])))]
        size = vocab["size"][int(rng.integers(len(vocab["size"])))]
    if kind == "color shape":
        return f"{color} {shape}", lambda o: o["color"] == color and o["shape"] == shape
    if kind == "shape":
        return shape, lambda o: o["shape"] == shape
    if kind == "color":
        return f"{color} object", lambda o: o["color"] == color
    return f"{size} {shape}", lambda o: o["size"] == size and o["shape"] == shape


def shapes_vocab() -> dict[str, Sequence[str]]:
    from vpd.benchmarks.shapes import COLORS, SHAPES, SIZES

    return {"color": COLORS, "shape": SHAPES, "size": SIZES}


def named_list(objects: Sequence[dict]) -> str:
    """``"a large red cube, a small blue sphere and a large green cylinder"`` (objects left to right)."""
    names = [f"a {o['size']} {o['color']} {o['shape']}" for o in _left_to_right(objects)]
    return join_and(names)


@PRETRAIN_TASKS.register("caption")
def caption(objects, width, height, rng, bins):
    noun = "object" if len(objects) == 1 else "objects"
    return [("caption en", f"{len(objects)} {noun}: {named_list(objects)}.")]


@PRETRAIN_TASKS.register("detect")
def detect(objects, width, height, rng, bins):
    phrase, keep = referring_phrase(objects, shapes_vocab(), rng)
    hits = [(o["bbox"], phrase) for o in _left_to_right(objects) if keep(o)]
    return [(f"detect {phrase}", detections_text(hits, width, height, bins))]


@PRETRAIN_TASKS.register("boxes")
def boxes(objects, width, height, rng, bins):
    phrase, keep = referring_phrase(objects, shapes_vocab(), rng)
    hits = [" ".join(str(int(v)) for v in o["bbox"]) for o in _left_to_right(objects) if keep(o)]
    return [(f"boxes {phrase}", " ; ".join(hits) if hits else NONE_TEXT)]


@PRETRAIN_TASKS.register("describe")
def describe(objects, width, height, rng, bins):
    o = objects[int(rng.integers(len(objects)))]
    return [(f"describe {box_to_loc(o['bbox'], width, height, bins)}", f"{o['size']} {o['color']} {o['shape']}")]


@PRETRAIN_TASKS.register("find")
def find(objects, width, height, rng, bins):
    phrase, keep = referring_phrase(objects, shapes_vocab(), rng)
    hits = [o for o in objects if keep(o)]
    return [(f"find {phrase}", named_list(hits) if hits else NONE_TEXT)]


@dataclass(frozen=True, kw_only=True)
class PretrainScene:
    """One scene usable for pretraining: its image (absolute path), size in pixels and objects."""

    scene_id: str
    image: str
    width: int
    height: int
    objects: tuple[dict, ...]


def read_scenes(data: str | Path, split: str = "train") -> list[PretrainScene]:
    """Distinct scenes of ``split`` in a ``shapes`` dataset folder (``examples.jsonl`` with scene records).

    Only ``train`` is accepted: pretraining must never see evaluation scenes.
    """
    if split != "train":
        raise ValueError(f"pretraining uses only train-split scenes, not {split!r}")
    return _scenes(data, split)


def heldout_scenes(data: str | Path, split: str = "val") -> list[PretrainScene]:
    """Scenes of an evaluation split (``val``/``test``), for measuring the base (never for training)."""
    if split == "train":
        raise ValueError("held-out scenes must come from val or test")
    return _scenes(data, split)


def _scenes(data: str | Path, split: str) -> list[PretrainScene]:
    from PIL import Image

    folder = Path(data)
    file = folder / "examples.jsonl"
    if not file.is_file():
        raise FileNotFoundError(f"no examples.jsonl in {folder} (make one with `vpd data shapes --out {folder}`)")
    seen: dict[str, PretrainScene] = {}
    sizes: dict[str, tuple[int, int]] = {}
    with file.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            sid = rec.get("scene_id")
            if rec.get("split") != split or not sid or sid in seen or not rec.get("scene"):
                continue
            image = (folder / rec["image"]).resolve()
            if str(image) not in sizes:
                with Image.open(image) as im:
                    sizes[str(image)] = im.size
            w, h = sizes[str(image)]
            seen[sid] = PretrainScene(scene_id=sid, image=str(image), width=w, height=h,
                                      objects=tuple(rec["scene"]))
    return list(seen.values())


def pretrain_records(scenes: Sequence[PretrainScene], tasks: dict[str, int] | None = None, *, seed: int = 0,
                     bins: int = DEFAULT_BINS) -> list[dict]:
    """Mixture-format records (``id, image, prefix, suffix, task, source, weight, example_id``)."""
    tasks = dict(DEFAULT_TASKS if tasks is None else tasks)
    for name in tasks:
        PRETRAIN_TASKS.get(name)  # unknown names fail with "did you mean"
    out = []
    for i, sc in enumerate(scenes):
        rng = np.random.default_rng([seed, i])
        for name, n in tasks.items():
            for j in range(n):
                for prefix, suffix in PRETRAIN_TASKS.get(name)(list(sc.objects), sc.width, sc.height, rng, bins):
                    out.append({"id": f"pt-{sc.scene_id}-{name}{j}", "image": sc.image, "prefix": prefix,
                                "suffix": suffix, "task": f"pretrain:{name}", "source": "pretrain",
                                "weight": 1.0, "example_id": sc.scene_id,
                                "scene": {"width": sc.width, "height": sc.height, "objects": list(sc.objects)}})
    return out


def _template_regex(template: str) -> re.Pattern:
    pattern = re.escape(template)
    for slot in ("color2", "shape2", "color", "shape", "size"):
        pattern = pattern.replace(re.escape("{" + slot + "}"), r"\w+")
    return re.compile(pattern, re.IGNORECASE)


def assert_not_eval_templates(records: Sequence[dict]) -> None:
    """Raise when any record's prefix or suffix contains an evaluation question template."""
    from vpd.benchmarks.shapes_questions import TEMPLATES

    patterns = [_template_regex(t) for t in TEMPLATES]
    for rec in records:
        for text in (rec["prefix"], rec["suffix"]):
            if any(p.search(text) for p in patterns):
                raise ValueError(f"pretraining record {rec['id']} contains an evaluation question: {text!r}")
