"""The `shapes` world: determinism, scene constraints, splits, file format, and answers re-derived
independently from the scene records by a small oracle written here."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import pytest

from vpd.benchmarks.shapes import (COLORS, IMAGE_HEIGHT, IMAGE_WIDTH, MAX_OVERLAP, QTYPES, SAME_COLOR_GAP,
                                   SHAPES, SIZE_RANGE, SIZES, SPLITS, generate_questions, generate_scene,
                                   make_dataset, render_scene, scene_split)
from vpd.benchmarks.shapes_questions import MARGIN, TEMPLATE_QTYPE, TEMPLATES
from vpd.datasets import read_examples

SCENES = [generate_scene(11, i) for i in range(300)]


def test_deterministic_by_seed_and_index():
    a, b = generate_scene(3, 5), generate_scene(3, 5)
    assert a == b
    assert render_scene(a).tobytes() == render_scene(b).tobytes()
    assert generate_scene(3, 6) != a and generate_scene(4, 5) != a
    assert generate_questions(a, k=3) == generate_questions(b, k=3)


def test_scene_constraints():
    counts = Counter()
    for s in SCENES:
        assert 2 <= len(s.objects) <= 10
        for o in s.objects:
            counts[o.shape, o.color, o.size] += 1
            assert o.shape in SHAPES and o.color in COLORS and o.size in SIZES
            x0, y0, x1, y1 = o.bbox
            assert 0 <= x0 < x1 <= IMAGE_WIDTH and 0 <= y0 < y1 <= IMAGE_HEIGHT
            lo, hi = SIZE_RANGE[o.size]
            assert lo <= max(x1 - x0, y1 - y0) <= hi
            if o.shape == "cylinder":
                assert y1 - y0 > 1.3 * (x1 - x0)  # taller than wide
        for i, a in enumerate(s.objects):
            for b in s.objects[i + 1:]:
                iw = min(a.bbox[2], b.bbox[2]) - max(a.bbox[0], b.bbox[0])
                ih = min(a.bbox[3], b.bbox[3]) - max(a.bbox[1], b.bbox[1])
                if a.color == b.color:
                    assert iw <= -SAME_COLOR_GAP or ih <= -SAME_COLOR_GAP
                elif iw > 0 and ih > 0:  # partial overlap: at most a corner
                    assert iw <= MAX_OVERLAP * min(a.bbox[2] - a.bbox[0], b.bbox[2] - b.bbox[0]) + 1e-9
                    assert ih <= MAX_OVERLAP * min(a.bbox[3] - a.bbox[1], b.bbox[3] - b.bbox[1]) + 1e-9
    assert len(counts) >= 50  # most of the 56 (shape, colour, size) combinations occur


def test_no_overlap_option():
    for i in range(50):
        s = generate_scene(2, i, overlap=False)
        for j, a in enumerate(s.objects):
            for b in s.objects[j + 1:]:
                assert (min(a.bbox[2], b.bbox[2]) <= max(a.bbox[0], b.bbox[0])
                        or min(a.bbox[3], b.bbox[3]) <= max(a.bbox[1], b.bbox[1]))


# -- the oracle -------------------------------------------------------------------------------
def _template_regex(template: str) -> re.Pattern[str]:
    pattern = re.escape(template)
    for name in ("color2", "shape2", "color", "shape", "size"):
        pattern = pattern.replace(re.escape("{" + name + "}"), f"(?P<{name}>[a-z]+?)")
    return re.compile(f"^{pattern}$")


def _match(objs, **kw):
    return [o for o in objs if all(getattr(o, k) == v for k, v in kw.items())]


def _the(objs, **kw):
    found = _match(objs, **kw)
    assert len(found) == 1, f"'the {kw}' is not unique"
    return found[0]


def _rel(a, b, rel):
    axis = 0 if rel in ("left", "right") else 1
    d = b.center[axis] - a.center[axis]
    assert abs(d) >= MARGIN, "centres too close to say"
    return d > 0 if rel in ("left", "above") else d < 0


def oracle(template: str, f: dict[str, str], objs) -> str:
    yn = lambda b: "yes" if b else "no"  # noqa: E731
    kw = {k: f[k] for k in ("color", "shape", "size") if k in f}
    if template.startswith("How many") and "{color2}" not in template and "in the image" not in template:
        return str(len(_match(objs, **kw)))
    if "{color2} {shape2}?" in template and template.startswith("How many"):
        ref = _the(objs, color=f["color2"], shape=f["shape2"])
        rel = next(r for r in ("left", "right", "above", "below") if f" {r} " in template)
        return str(sum(_rel(o, ref, rel) for o in _match(objs, **kw) if o is not ref))
    if template.startswith(("Is there", "Are there any")):
        return yn(bool(_match(objs, **kw)))
    if template.startswith("What color is the {size}"):
        return _the(objs, **kw).color
    if template.startswith("What shape is"):
        return _the(objs, **kw).shape
    if template.startswith("What size is"):
        return _the(objs, **kw).size
    if template.startswith("Is the {color} {shape} larger"):
        a, b = _the(objs, **kw), _the(objs, color=f["color2"], shape=f["shape2"])
        assert a.size != b.size
        return yn(a.size == "large")
    if template.startswith("Is the"):
        a, b = _the(objs, **kw), _the(objs, color=f["color2"], shape=f["shape2"])
        rel = next(r for r in ("left", "right", "above", "below") if f" {r} " in template)
        return yn(_rel(a, b, rel))
    if template.startswith("Are there more {color}"):
        return yn(len(_match(objs, color=f["color"])) > len(_match(objs, color=f["color2"])))
    if template.startswith("Are there more {shape}"):
        return yn(len(_match(objs, shape=f["shape"])) > len(_match(objs, shape=f["shape2"])))
    raise AssertionError(f"no oracle for {template}")


def oracle_choice(template: str, f: dict[str, str], objs) -> str:
    if template.startswith("What color"):
        return _the(objs, **f).color
    if template.startswith("Which shape"):
        return _the(objs, **f).shape
    return str(len(_match(objs, **f)))


def test_every_answer_agrees_with_an_independent_oracle():
    seen: Counter = Counter()
    exists_answers: Counter = Counter()
    for s in SCENES:
        for q in generate_questions(s, k=7, offset=s.index):
            m = _template_regex(q.template).match(q.question)
            assert m, (q.template, q.question)
            fill = {k: v for k, v in m.groupdict().items() if v is not None}
            assert fill == q.fillers
            assert q.qtype == TEMPLATE_QTYPE[q.template]
            if q.qtype == "choice":
                assert q.choices is not None and len(q.choices) == 4 and len(set(q.choices)) == 4
                assert q.answer in "ABCD"
                assert q.choices["ABCD".index(q.answer)] == oracle_choice(q.template, fill, s.objects)
            else:
                assert q.choices is None
                assert q.answer == oracle(q.template, fill, s.objects), q.question
            if q.qtype.startswith("count"):
                assert q.answer.isdigit()
            if q.qtype in ("exists", "spatial", "compare"):
                assert q.answer in ("yes", "no")
            if q.qtype == "exists":
                exists_answers[q.answer] += 1
            seen[q.template] += 1
    assert set(seen) == set(TEMPLATES)  # every template is produced
    assert set(TEMPLATE_QTYPE.values()) == set(QTYPES)
    yes = exists_answers["yes"] / sum(exists_answers.values())
    assert 0.35 <= yes <= 0.65  # balanced, POPE-like: absent objects are asked about


def test_questions_per_scene_have_distinct_templates():
    for s in SCENES[:50]:
        qs = generate_questions(s, k=4)
        assert len(qs) == 4 and len({q.template for q in qs}) == 4


def test_splits_are_per_scene_and_disjoint(tmp_path: Path):
    assigned = Counter(scene_split(0, i) for i in range(1000))
    assert set(assigned) == set(SPLITS)
    assert 0.7 < assigned["train"] / 1000 < 0.9
    scenes_by_split = {}
    for sp in ("train", "val", "test"):
        make_dataset(tmp_path / sp, n=30, seed=4, split=sp)
        exs, bad = read_examples(tmp_path / sp)
        assert not bad and all(e.metadata["split"] == sp for e in exs)
        scenes_by_split[sp] = {e.metadata["scene_id"] for e in exs}
    assert not (scenes_by_split["train"] & scenes_by_split["val"])
    assert not (scenes_by_split["train"] & scenes_by_split["test"])
    assert not (scenes_by_split["val"] & scenes_by_split["test"])
    assert sum(len(v) for v in scenes_by_split.values()) == 30
    with pytest.raises(ValueError, match="unknown split"):
        make_dataset(tmp_path / "x", n=1, split="dev")


def test_dataset_files(shapes_dir: Path):
    lines = (shapes_dir / "examples.jsonl").read_text().splitlines()
    assert len(lines) == 40
    for line in lines:
        rec = json.loads(line)
        for key in ("id", "image", "question", "answer", "choices", "qtype", "split", "scene"):
            assert key in rec
        assert not Path(rec["image"]).is_absolute() and (shapes_dir / rec["image"]).is_file()
        assert rec["qtype"] in QTYPES and rec["split"] in SPLITS
        for o in rec["scene"]:
            assert set(o) == {"shape", "color", "size", "bbox"} and len(o["bbox"]) == 4
    ids = [json.loads(l)["id"] for l in lines]
    assert len(set(ids)) == len(ids)
    examples, bad = read_examples(shapes_dir)
    assert len(examples) == 40 and not bad
    assert examples[0].metadata["scene"] and Path(examples[0].image).is_file()
    meta = json.loads((shapes_dir / "dataset.json").read_text())
    assert meta["seed"] == 0 and meta["examples"] == 40


def test_prefix_of_a_larger_dataset_is_identical(tmp_path: Path):
    make_dataset(tmp_path / "a", n=3, seed=9)
    make_dataset(tmp_path / "b", n=6, seed=9)
    a = (tmp_path / "a" / "examples.jsonl").read_text().splitlines()
    b = (tmp_path / "b" / "examples.jsonl").read_text().splitlines()
    assert b[: len(a)] == a
