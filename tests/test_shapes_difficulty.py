"""The `shapes` difficulty dial: easy is byte-identical to the world before the dial existed,
medium/hard stay deterministic and exactly labelled, and the pixel detector errs on hard (with
lower confidence on its mistakes)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vpd.benchmarks.perf.shapes import detection_quality
from vpd.benchmarks.shapes import COLORS, SHAPES, SIZES, generate_scene, make_dataset, render_scene, scene_split
from vpd.benchmarks.shapes_difficulty import DIFFICULTIES, LEVELS, get_difficulty
from vpd.registry import UnknownNameError
from vpd.tools.backends.shapes import ShapesBackend
from vpd.types import Box

#: sha256 of the raw RGB bytes, recorded with the renderer of commit 5b273fa (before the dial).
EASY_HASHES = {
    (0, 0, True): "f78bc304f26c8b672c6d1bf739d41d3993708a89e38ac7bdaa35d888f1af4ee0",
    (0, 1, False): "a60d4d0151beb1058d3c0899dd5fea305334c10cf7eaa3bca9464db2177b958d",
    (7, 5, True): "f2250e448c6f0eb9ca5c3393d5d9ce401eaf3c3f7b5f95b160c83093d18ec073",
    (3, 42, True): "60a0335464af0ddc04bf05915eae4615615a814abc8a2913ced3c3238d3f014a",
}


def _sha(img) -> str:
    return hashlib.sha256(img.tobytes()).hexdigest()


@pytest.mark.parametrize("key", sorted(EASY_HASHES))
def test_easy_images_are_byte_identical_to_before_the_dial(key):
    seed, index, noise = key
    default = generate_scene(seed, index, noise=noise)
    assert generate_scene(seed, index, noise=noise, difficulty="easy") == default
    assert default.id == f"s{seed}-{index:06d}"
    assert _sha(render_scene(default)) == EASY_HASHES[key]


def test_levels_registered_in_order_and_unknown_names_fail():
    assert LEVELS == ("easy", "medium", "hard") and set(DIFFICULTIES.names()) == set(LEVELS)
    assert get_difficulty("easy").is_easy and not get_difficulty("hard").is_easy
    with pytest.raises(UnknownNameError, match="did you mean 'hard'"):
        generate_scene(0, 0, difficulty="hrad")


@pytest.mark.parametrize("level", ["medium", "hard"])
def test_harder_levels_are_deterministic_and_exactly_labelled(level):
    a, b = generate_scene(5, 3, difficulty=level), generate_scene(5, 3, difficulty=level)
    assert a == b and a.difficulty == level and a.id == f"s5{level[0]}-000003"
    assert _sha(render_scene(a)) == _sha(render_scene(b))
    assert _sha(render_scene(a)) != _sha(render_scene(generate_scene(5, 3)))
    for o in a.objects:
        assert o.shape in SHAPES and o.color in COLORS and o.size in SIZES
        x0, y0, x1, y1 = o.bbox
        assert 0 <= x0 < x1 <= a.width and 0 <= y0 < y1 <= a.height


def test_hard_draws_tiny_objects_and_touching_same_colour_pairs():
    scenes = [generate_scene(2, i, difficulty="hard") for i in range(60)]
    sides = [max(o.bbox[2] - o.bbox[0], o.bbox[3] - o.bbox[1]) for s in scenes for o in s.objects]
    assert min(sides) <= get_difficulty("hard").tiny_range[1]
    assert all(max(o.bbox[2] - o.bbox[0], o.bbox[3] - o.bbox[1]) >= 20
               for i in range(60) for o in generate_scene(2, i).objects)  # easy never does

    def gap(p, q):
        return max(q.bbox[0] - p.bbox[2], p.bbox[0] - q.bbox[2], q.bbox[1] - p.bbox[3], p.bbox[1] - q.bbox[3])

    close = [1 for s in scenes for i, p in enumerate(s.objects) for q in s.objects[i + 1:]
             if p.color == q.color and gap(p, q) < 6]
    assert close, "hard should place same-colour objects closer than easy's 6 px gap"


def test_detector_is_perfect_on_easy_and_errs_on_hard():
    easy = detection_quality(7, 12, "easy")
    hard = detection_quality(7, 12, "hard")
    assert easy["precision"] == easy["recall"] == easy["count_acc"] == 1.0
    assert hard["count_acc"] < 0.95 and hard["precision"] < 0.95 and hard["recall"] < 0.95


def test_confidence_is_lower_on_the_detectors_mistakes():
    backend = ShapesBackend(cache_size=0)
    right, wrong = [], []
    for i in range(12):
        scene = generate_scene(7, i, difficulty="hard")
        truth = [(o, Box(x0=o.bbox[0], y0=o.bbox[1], x1=o.bbox[2], y1=o.bbox[3])) for o in scene.objects]
        for d in backend.detect(render_scene(scene), "object"):
            ok = any(d.label.endswith(f"{o.color} {o.shape}") and d.iou(t) >= 0.5 for o, t in truth)
            (right if ok else wrong).append(d.score)
            assert 0.0 <= d.score <= 1.0
    assert right and wrong
    assert sum(right) / len(right) > sum(wrong) / len(wrong) + 0.1


def test_dataset_records_the_level_and_keeps_the_split_rule(tmp_path: Path):
    make_dataset(tmp_path / "h", n=4, seed=9, difficulty="hard")
    meta = json.loads((tmp_path / "h" / "dataset.json").read_text())
    assert meta["difficulty"] == "hard" and meta["version"] == "2"
    rows = [json.loads(x) for x in (tmp_path / "h" / "examples.jsonl").read_text().splitlines()]
    assert rows and all(r["difficulty"] == "hard" and r["scene_id"].startswith("s9h-") for r in rows)
    for r in rows:
        idx = int(r["scene_id"].split("-")[1])
        assert r["split"] == scene_split(9, idx)
        assert r["scene"] == generate_scene(9, idx, difficulty="hard").scene_records()
    with pytest.raises(UnknownNameError):
        make_dataset(tmp_path / "bad", n=1, difficulty="extreme")
    assert not (tmp_path / "bad").exists()


def test_cli_difficulty_option(tmp_path: Path):
    from vpd.cli import app

    runner = CliRunner()
    res = runner.invoke(app, ["data", "shapes", "--n", "2", "--seed", "1", "--difficulty", "medium",
                              "--out", str(tmp_path / "m")])
    assert res.exit_code == 0, res.output
    assert json.loads((tmp_path / "m" / "dataset.json").read_text())["difficulty"] == "medium"
    bad = runner.invoke(app, ["data", "shapes", "--n", "1", "--difficulty", "hardest", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "hard" in bad.output
