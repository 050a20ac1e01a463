"""The synthetic ``shapes`` world: seeded scenes, their rendering and their questions.

A scene is 2-10 objects (cube, sphere, cylinder, triangle; 7 colours; 2 sizes) on a textured,
noisy background, with optional partial overlap. Everything is deterministic by ``(seed, index)``:
scene ``i`` of seed ``s`` is the same whether you generate 1 or 10,000 scenes, so splits are
assigned per scene and are disjoint (a scene's questions all go to the scene's split).

Conventions: boxes are ``[x0, y0, x1, y1]`` in pixels, origin top-left, y down; a ground-truth box is
the object's full (amodal) extent, even where another object hides part of it.

Generator guarantees at the default ``difficulty="easy"`` (what makes the labels trustworthy and the
detection problem well posed; ``medium``/``hard`` loosen the last three on purpose so the pixel
detector errs, see :mod:`vpd.benchmarks.shapes_difficulty` — labels stay exact either way):

* objects of the same colour never touch (a gap of at least ``SAME_COLOR_GAP`` pixels);
* overlaps are partial: two overlapping boxes share at most ``MAX_OVERLAP`` of each side of
  the smaller box (a corner, never a whole side), so at least ~90% of an object stays visible;
* "small" objects span 20-26 px, "large" ones 40-50 px (the longer side of the box).

Public API::

    scene = generate_scene(seed=0, index=3)          # Scene (objects with bboxes)
    image = render_scene(scene)                      # PIL RGB image
    qs = generate_questions(scene, k=2)              # list[Question]
    summary = make_dataset("data/shapes", n=200, seed=7)   # writes images/ + examples.jsonl
"""

from __future__ import annotations

import contextlib
import functools
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

import numpy as np

#: The vocabulary (fixed by docs/contracts.md; other modules rely on it).
SHAPES: tuple[str, ...] = ("cube", "sphere", "cylinder", "triangle")
COLORS: tuple[str, ...] = ("red", "green", "blue", "yellow", "purple", "orange", "cyan")
SIZES: tuple[str, ...] = ("small", "large")
QTYPES: tuple[str, ...] = ("count_simple", "count_complex", "exists", "attribute", "spatial",
                           "compare", "choice")
SPLITS: tuple[str, ...] = ("train", "val", "test")

#: Base RGB of each colour (chosen far apart in hue so they stay separable under shading).
RGB: dict[str, tuple[int, int, int]] = {
    "red": (215, 35, 45), "green": (40, 175, 60), "blue": (40, 80, 230),
    "yellow": (235, 222, 30), "purple": (150, 50, 205), "orange": (250, 130, 20),
    "cyan": (30, 200, 215),
}

IMAGE_WIDTH, IMAGE_HEIGHT = 320, 240
#: Range of an object's scale ``s`` (its longer side, pixels) per size.
SIZE_RANGE: dict[str, tuple[int, int]] = {"small": (20, 26), "large": (40, 50)}
MIN_OBJECTS, MAX_OBJECTS = 2, 10
SAME_COLOR_GAP = 6  # px between boxes of objects of the same colour
MAX_OVERLAP = 0.3  # of each side of the smaller box
BORDER = 4  # px kept free at the image border
OVERLAP_PROB = 0.35  # chance that a new object is placed overlapping a corner of another
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)


@dataclass(frozen=True, kw_only=True)
class ShapeObject:
    """One object: ``bbox`` is ``(x0, y0, x1, y1)`` in pixels, origin top-left, y down."""

    shape: str
    color: str
    size: str
    bbox: tuple[int, int, int, int]

    @property
    def center(self) -> tuple[float, float]:
        """Box centre ``(x, y)`` in pixels, y down."""
        x0, y0, x1, y1 = self.bbox
        return ((x0 + x1) / 2, (y0 + y1) / 2)

    def to_dict(self) -> dict:
        return {"shape": self.shape, "color": self.color, "size": self.size, "bbox": list(self.bbox)}

    @classmethod
    def from_dict(cls, d: dict) -> "ShapeObject":
        return cls(shape=d["shape"], color=d["color"], size=d["size"],
                   bbox=tuple(int(v) for v in d["bbox"]))  # type: ignore[arg-type]


@dataclass(frozen=True, kw_only=True)
class Scene:
    """A scene: objects in drawing order (later ones may hide corners of earlier ones)."""

    id: str
    seed: int
    index: int
    width: int
    height: int
    objects: tuple[ShapeObject, ...]
    noise: bool = True
    difficulty: str = "easy"  # a level of vpd.benchmarks.shapes_difficulty

    def scene_records(self) -> list[dict]:
        return [o.to_dict() for o in self.objects]


@dataclass(frozen=True, kw_only=True)
class Question:
    """A generated question. ``answer`` is a digit string, yes/no, a vocabulary word or a letter."""

    question: str
    answer: str
    qtype: str
    template: str
    choices: tuple[str, ...] | None = None
    fillers: dict[str, str] = field(default_factory=dict)


def object_dims(shape: str, scale: int) -> tuple[int, int]:
    """Box ``(width, height)`` in pixels of a ``shape`` of scale ``scale`` (its longer side)."""
    if shape == "triangle":
        return scale, int(round(scale * 0.87))  # base = scale, height = 0.87 * base
    if shape == "cylinder":
        return int(round(scale * 0.62)), scale  # taller than wide
    return scale, scale


def _rng(seed: int, index: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index), int(stream)]))


def _compatible(a: tuple[int, int, int, int], color_a: str, b: tuple[int, int, int, int], color_b: str,
                allow_overlap: bool, *, same_gap: int = SAME_COLOR_GAP, max_overlap: float = MAX_OVERLAP) -> bool:
    ax0, ay0, ax1, ay1 = a
    bx0, by0, bx1, by1 = b
    gap = same_gap if color_a == color_b else 2
    separated = (ax1 + gap <= bx0 or bx1 + gap <= ax0 or ay1 + gap <= by0 or by1 + gap <= ay0)
    if separated:
        return True
    if color_a == color_b or not allow_overlap:
        return False
    iw = min(ax1, bx1) - max(ax0, bx0)
    ih = min(ay1, by1) - max(ay0, by0)
    if iw <= 0 or ih <= 0:
        return True  # touching sides of different colours is fine
    min_w = min(ax1 - ax0, bx1 - bx0)
    min_h = min(ay1 - ay0, by1 - by0)
    return iw <= max_overlap * min_w and ih <= max_overlap * min_h


def generate_scene(seed: int, index: int, *, width: int = IMAGE_WIDTH, height: int = IMAGE_HEIGHT,
                   min_objects: int = MIN_OBJECTS, max_objects: int = MAX_OBJECTS,
                   overlap: bool = True, noise: bool = True, difficulty: str = "easy") -> Scene:
    """Scene ``index`` of ``seed`` (independent of all other scenes).

    ``overlap`` allows partial overlaps between objects of different colours; ``noise`` is
    recorded for the renderer (background texture, pixel noise, speckles). ``difficulty``
    (:mod:`vpd.benchmarks.shapes_difficulty`) sets occlusion, touching neighbours and tiny
    objects; ``easy`` draws exactly the scenes this function always drew. Non-easy scene ids carry
    the level's initial (``s7h-000003``), so levels never share an id.
    """
    from vpd.benchmarks.shapes_difficulty import get_difficulty

    level = get_difficulty(difficulty)
    easy = level.is_easy
    rng = _rng(seed, index, 0)
    n = int(rng.integers(min_objects, max_objects + 1))
    objects: list[ShapeObject] = []
    attempts = 0
    while len(objects) < n and attempts < 400:
        attempts += 1
        shape = SHAPES[int(rng.integers(len(SHAPES)))]
        color = COLORS[int(rng.integers(len(COLORS)))]
        size = SIZES[int(rng.integers(len(SIZES)))]
        lo, hi = SIZE_RANGE[size]
        if not easy and size == "small" and rng.random() < level.tiny_prob:
            lo, hi = level.tiny_range
        w, h = object_dims(shape, int(rng.integers(lo, hi + 1)))
        anchors = [o for o in objects if o.color != color]
        want_overlap = overlap and bool(anchors) and bool(rng.random() < level.overlap_prob)
        adjacent = not easy and not want_overlap and bool(objects) and bool(rng.random() < level.adjacent_prob)
        for _ in range(30):
            if want_overlap:  # tuck a corner of the new box under / over a corner of an anchor
                a = anchors[int(rng.integers(len(anchors)))]
                ax0, ay0, ax1, ay1 = a.bbox
                fx = float(rng.uniform(0.12, level.max_overlap)) * min(w, ax1 - ax0)
                fy = float(rng.uniform(0.12, level.max_overlap)) * min(h, ay1 - ay0)
                x0 = int(ax1 - fx) if rng.random() < 0.5 else int(round(ax0 + fx - w))
                y0 = int(ay1 - fy) if rng.random() < 0.5 else int(round(ay0 + fy - h))
                if not (BORDER <= x0 <= width - BORDER - w and BORDER <= y0 <= height - BORDER - h):
                    continue
            elif adjacent:  # beside a neighbour, 0-2 px away (same colours then merge in the pixels)
                x0, y0 = _beside(rng, objects[int(rng.integers(len(objects)))].bbox, w, h)
                if not (BORDER <= x0 <= width - BORDER - w and BORDER <= y0 <= height - BORDER - h):
                    continue
            else:
                x0 = int(rng.integers(BORDER, width - BORDER - w + 1))
                y0 = int(rng.integers(BORDER, height - BORDER - h + 1))
            box = (x0, y0, x0 + w, y0 + h)
            if all(_compatible(box, color, o.bbox, o.color, want_overlap, same_gap=level.same_color_gap,
                               max_overlap=level.max_overlap) for o in objects):
                objects.append(ShapeObject(shape=shape, color=color, size=size, bbox=box))
                break
    if len(objects) < min_objects:  # pragma: no cover - cannot happen with the default sizes
        raise RuntimeError(f"could not place {min_objects} objects in scene {seed}/{index}")
    tag = "" if level.name == "easy" else level.name[0]
    return Scene(id=f"s{seed}{tag}-{index:06d}", seed=int(seed), index=int(index), width=width,
                 height=height, objects=tuple(objects), noise=noise, difficulty=level.name)


def _beside(rng: np.random.Generator, box: tuple[int, int, int, int], w: int, h: int) -> tuple[int, int]:
    """Top-left of a ``w x h`` box placed 0-2 px left/right/above/below ``box``, sliding along it."""
    bx0, by0, bx1, by1 = box
    gap = int(rng.integers(0, 3))
    side = int(rng.integers(4))
    if side < 2:  # left / right
        x0 = bx1 + gap if side == 0 else bx0 - gap - w
        y0 = int(rng.integers(by0 - h // 2, by1 - h // 2 + 1))
    else:  # below / above
        y0 = by1 + gap if side == 2 else by0 - gap - h
        x0 = int(rng.integers(bx0 - w // 2, bx1 - w // 2 + 1))
    return x0, y0


def scene_split(seed: int, index: int, fractions: tuple[float, float, float] = DEFAULT_FRACTIONS) -> str:
    """The split (train/val/test) of scene ``index`` of ``seed``; fixed per scene, so splits are disjoint."""
    total = float(sum(fractions))
    u = float(_rng(seed, index, 2).random()) * total
    acc = 0.0
    for name, frac in zip(SPLITS, fractions):
        acc += frac
        if u < acc:
            return name
    return SPLITS[-1]


def render_scene(scene: Scene):
    """The scene as a PIL RGB image (see :mod:`vpd.benchmarks.shapes_render`)."""
    from vpd.benchmarks.shapes_render import render

    return render(scene)


def generate_questions(scene: Scene, k: int = 2, *, qtypes: Iterable[str] | None = None,
                       offset: int = 0) -> list[Question]:
    """Up to ``k`` questions about ``scene`` with distinct templates (see :mod:`vpd.benchmarks.shapes_questions`).

    Question types rotate through ``qtypes`` (default :data:`QTYPES`) starting at ``offset``, so a
    dataset is balanced across types.
    """
    from vpd.benchmarks.shapes_questions import questions_for_scene

    return questions_for_scene(scene, k=k, qtypes=tuple(qtypes or QTYPES), offset=offset,
                               rng=_rng(scene.seed, scene.index, 1))


@dataclass(frozen=True, kw_only=True)
class DatasetSummary:
    """What :func:`make_dataset` wrote."""

    out: str
    scenes: int
    examples: int
    per_split: dict[str, int]
    per_qtype: dict[str, int]

    def to_dict(self) -> dict:
        return {"out": self.out, "scenes": self.scenes, "examples": self.examples,
                "per_split": self.per_split, "per_qtype": self.per_qtype}


def example_records(scene: Scene, image_rel: str, split: str, k: int) -> list[dict]:
    """The ``examples.jsonl`` records of one scene (fields as in docs/contracts.md)."""
    records = []
    scene_dicts = scene.scene_records()
    for j, q in enumerate(generate_questions(scene, k=k, offset=scene.index)):
        records.append({
            "id": f"shapes-{scene.id}-q{j}", "image": image_rel, "question": q.question,
            "answer": q.answer, "choices": None if q.choices is None else list(q.choices),
            "qtype": q.qtype, "split": split, "template": q.template, "scene_id": scene.id,
            "difficulty": scene.difficulty, "scene": scene_dicts,
        })
    return records


def make_dataset(out: str | Path, n: int, seed: int = 0, *, per_image: int = 2, split: str = "all",
                 fractions: tuple[float, float, float] = DEFAULT_FRACTIONS, overlap: bool = True,
                 noise: bool = True, difficulty: str = "easy",
                 progress: Callable[[int], None] | None = None, workers: int = 1) -> DatasetSummary:
    """Write ``n`` scenes of ``seed`` to ``out``: ``images/<scene>.png`` and ``examples.jsonl``.

    ``difficulty`` is a level of :mod:`vpd.benchmarks.shapes_difficulty` (``easy`` = the original
    world); it is recorded in ``dataset.json`` and in every example (``difficulty``).

    ``split`` = ``all`` keeps every scene; ``train``/``val``/``test`` keeps only the scenes of that
    split (scenes ``0..n-1`` are still the candidates, so datasets written with the same seed and
    ``n`` but different splits are disjoint). ``progress(i)`` is called after each scene.
    ``workers`` > 1 renders scenes in that many processes; every scene depends only on ``(seed, i)``,
    so the files are byte-identical to ``workers=1``. Also writes ``dataset.json`` (generator settings
    and counts).
    """
    if split != "all" and split not in SPLITS:
        raise ValueError(f"unknown split {split!r} (use all, {', '.join(SPLITS)})")
    if n < 0 or per_image < 1:
        raise ValueError("n must be >= 0 and per_image >= 1")
    from vpd.benchmarks.shapes_difficulty import get_difficulty

    get_difficulty(difficulty)  # unknown level -> "did you mean", before anything is written
    out = Path(out)
    (out / "images").mkdir(parents=True, exist_ok=True)
    per_split: dict[str, int] = {}
    per_qtype: dict[str, int] = {}
    scenes = examples = 0
    job = functools.partial(_write_scene, out=out, seed=seed, split=split, fractions=fractions, overlap=overlap,
                            noise=noise, difficulty=difficulty, per_image=per_image)
    with contextlib.ExitStack() as stack:
        fh = stack.enter_context((out / "examples.jsonl").open("w", encoding="utf-8"))
        if workers > 1:
            import concurrent.futures as cf
            import multiprocessing as mp

            pool = stack.enter_context(cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")))
            results = pool.map(job, range(n), chunksize=max(1, min(64, n // (8 * workers))))
        else:
            results = map(job, range(n))
        for i, records in enumerate(results):  # in scene order either way
            for rec in records or ():
                fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
                per_split[rec["split"]] = per_split.get(rec["split"], 0) + 1
                per_qtype[rec["qtype"]] = per_qtype.get(rec["qtype"], 0) + 1
                examples += 1
            scenes += records is not None
            if progress:
                progress(i)
    summary = DatasetSummary(out=str(out), scenes=scenes, examples=examples,
                             per_split=dict(sorted(per_split.items())), per_qtype=dict(sorted(per_qtype.items())))
    meta = {"generator": "vpd.benchmarks.shapes", "version": GENERATOR_VERSION, "seed": seed, "n": n,
            "per_image": per_image, "split": split, "fractions": list(fractions), "overlap": overlap,
            "noise": noise, "difficulty": difficulty, **summary.to_dict()}
    (out / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    return summary


def _write_scene(i: int, *, out: Path, seed: int, split: str, fractions: tuple[float, float, float],
                 overlap: bool, noise: bool, difficulty: str, per_image: int) -> list[dict] | None:
    """Render scene ``i`` to ``out/images`` and return its example records (``None``: not in ``split``)."""
    sp = scene_split(seed, i, fractions)
    if split != "all" and sp != split:
        return None
    scene = generate_scene(seed, i, overlap=overlap, noise=noise, difficulty=difficulty)
    rel = f"images/{scene.id}.png"
    render_scene(scene).save(out / rel, optimize=False, compress_level=1)
    return example_records(scene, rel, sp, per_image)


#: Bumped whenever rendering or question generation changes (written into dataset.json).
#: 2: the difficulty dial (easy scenes and images unchanged; examples carry ``difficulty``).
GENERATOR_VERSION = "2"


def __getattr__(name: str):
    """Lazy re-exports: ``TEMPLATES`` and ``TEMPLATE_QTYPE`` live in :mod:`vpd.benchmarks.shapes_questions`."""
    if name in ("TEMPLATES", "TEMPLATE_QTYPE"):
        from vpd.benchmarks import shapes_questions

        return getattr(shapes_questions, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
