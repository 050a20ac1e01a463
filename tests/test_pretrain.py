"""Pretraining: location tokens, the task builders, the split/template guarantees, `vpd pretrain` and
`vpd train --init` from its base."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest


def test_loc_tokens_round_trip_within_a_bin() -> None:
    from vpd.distill.loc_tokens import detections_text, parse_detections

    boxes = [((12, 40, 36, 64), "red cube"), ((200, 10, 250, 60), "blue sphere")]
    text = detections_text(boxes, 320, 240, bins=64)
    assert text.count("<loc") == 8 and " ; " in text
    parsed = parse_detections(text, 320, 240, bins=64)
    assert [label for _, label in parsed] == ["red cube", "blue sphere"]
    for (box, _), (got, _) in zip(boxes, parsed):
        assert all(abs(a - b) <= 320 / 64 for a, b in zip(box, got))
    assert detections_text([], 320, 240) == "none" and parse_detections("none", 320, 240) == []
    assert parse_detections("<loc0001><loc0002> junk", 320, 240) == []  # malformed pieces are skipped


def test_records_use_only_train_scenes_and_no_eval_template(shapes_dir: Path) -> None:
    from vpd.benchmarks.shapes import scene_split
    from vpd.distill.pretrain_tasks import (PRETRAIN_TASKS, assert_not_eval_templates, heldout_scenes,
                                            pretrain_records, read_scenes)

    scenes = read_scenes(shapes_dir)
    assert scenes
    for sc in scenes:  # scene ids are "s<seed>-<index>": the split is recomputed from the generator
        seed, index = (int(v) for v in sc.scene_id.removeprefix("s").split("-"))
        assert scene_split(seed, index) == "train"
    records = pretrain_records(scenes, {name: 1 for name in PRETRAIN_TASKS.names()})  # every registered task
    assert {r["task"] for r in records} == {f"pretrain:{t}" for t in PRETRAIN_TASKS.names()}
    train_images = {sc.image for sc in scenes}
    held = {sc.image for split in ("val", "test") for sc in heldout_scenes(shapes_dir, split)}
    assert held and {r["image"] for r in records} <= train_images and not train_images & held
    assert_not_eval_templates(records)  # the guard passes on the real records …
    bad = dict(records[0], prefix="How many red cubes are there?")
    with pytest.raises(ValueError, match="evaluation question"):  # … and fails on an evaluation question
        assert_not_eval_templates([bad])
    with pytest.raises(ValueError, match="train-split"):
        read_scenes(shapes_dir, "test")


def test_detect_targets_are_the_scene_boxes() -> None:
    from vpd.distill.loc_tokens import parse_detections
    from vpd.distill.pretrain_tasks import PRETRAIN_TASKS

    objs = [{"shape": "cube", "color": "red", "size": "large", "bbox": [10, 20, 50, 60]},
            {"shape": "cube", "color": "red", "size": "small", "bbox": [100, 30, 122, 52]},
            {"shape": "sphere", "color": "blue", "size": "small", "bbox": [200, 30, 222, 52]}]
    for seed in range(30):
        (prefix, suffix), = PRETRAIN_TASKS.get("detect")(objs, 320, 240, np.random.default_rng(seed), 64)
        phrase = prefix.removeprefix("detect ")
        words = phrase.replace(" object", "").split()
        want = [o for o in objs if all(w in (o["color"], o["shape"], o["size"]) for w in words)]
        got = parse_detections(suffix, 320, 240, 64)
        assert len(got) == len(want), (prefix, suffix)
    (_, caption), = PRETRAIN_TASKS.get("caption")(objs, 320, 240, np.random.default_rng(0), 64)
    assert caption == "3 objects: a large red cube, a small red cube and a small blue sphere."


def test_find_names_every_object_the_phrase_selects() -> None:
    from vpd.distill.pretrain_tasks import PRETRAIN_TASKS

    objs = [{"shape": "cube", "color": "red", "size": "large", "bbox": [10, 20, 50, 60]},
            {"shape": "sphere", "color": "blue", "size": "small", "bbox": [200, 30, 222, 52]},
            {"shape": "cube", "color": "red", "size": "small", "bbox": [100, 30, 122, 52]}]
    seen = set()
    for seed in range(40):
        (prefix, suffix), = PRETRAIN_TASKS.get("find")(objs, 320, 240, np.random.default_rng(seed), 64)
        phrase = prefix.removeprefix("find ")
        words = phrase.replace(" object", "").split()
        want = sorted((o for o in objs if all(w in (o["color"], o["shape"], o["size"]) for w in words)),
                      key=lambda o: o["bbox"][0])  # left to right
        expected = " and ".join(f"a {o['size']} {o['color']} {o['shape']}" for o in want) if want else "none"
        assert suffix == expected, (prefix, suffix)
        seen.add(len(want))
    assert {0, 1, 2} <= seen  # absent, single and multiple objects all occur


def test_conv_stem_gives_the_patch_grid() -> None:
    import jax.numpy as jnp
    from flax import nnx

    from vpd.distill.vlm_config import preset
    from vpd.distill.vlm_model import VisionEncoder

    cfg = preset("test").replace(vision=dict(stem="conv", stem_width=8))
    enc = VisionEncoder(cfg.vision, rngs=nnx.Rngs(0))
    out = enc(jnp.zeros((2, cfg.vision.image_size, cfg.vision.image_size, 3)))
    assert out.shape == (2, cfg.num_image_tokens, cfg.vision.width)
    with pytest.raises(ValueError, match="stem"):
        VisionEncoder(cfg.vision.__class__(**{**cfg.vision.__dict__, "stem": "nope"}), rngs=nnx.Rngs(0))


def test_pretrain_cli_then_train_init(shapes_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from vpd.cli import app
    from vpd.distill.pretrain import detection_quality
    from vpd.distill.vlm_checkpoint import read_meta
    from vpd.distill.vlm_tokenizer import load_tokenizer

    base = tmp_path / "base"
    r = CliRunner().invoke(app, ["pretrain", "--data", str(shapes_dir), "--out", str(base), "--model", "test",
                                 "--steps", "3", "--batch", "4", "--loc-bins", "16", "--eval-scenes", "2",
                                 "--tasks", "caption=1,detect=3,boxes=2,describe=2,find=1"])
    assert r.exit_code == 0, (r.output, r.exception)
    summary = json.loads((base / "pretrain.json").read_text())
    assert summary["split"] == "train" and summary["steps"] == 3 and summary["loc_bins"] == 16
    det = summary["detection"]
    assert det["split"] == "val" and det["queries"] == 3 * det["scenes"] > 0
    assert 0.0 <= det["recall@0.5"] <= 1.0 and 0.0 <= det["precision@0.5"] <= 1.0
    cap = det["caption"]
    assert cap["scenes"] == det["scenes"] and 1 <= cap["distinct_captions"] <= cap["scenes"]
    assert cap["prior"]["scenes"] == det["scenes"] and cap["prior"]["caption"].split()[1].startswith("object")
    assert det["find"]["queries"] == det["queries"] and 0.5 <= det["find"]["presence_prior"] <= 1.0
    # a base never trained on `find` is not scored on it (its 'find' decodes would mean nothing)
    no_find = tmp_path / "base_no_find"
    shutil.copytree(base, no_find)
    records = (no_find / "pretrain_data" / "train.jsonl").read_text().splitlines()
    kept = [l for l in records if json.loads(l)["task"] != "pretrain:find"]
    assert 0 < len(kept) < len(records)
    (no_find / "pretrain_data" / "train.jsonl").write_text("\n".join(kept) + "\n")
    det2 = detection_quality(no_find, shapes_dir, limit=2)
    assert "find" not in det2 and det2["queries"] == det["queries"] and "caption" in det2
    tok = load_tokenizer(base)
    assert tok.encode("<loc0007>") == [tok.tokenizer.token_to_id("<loc0007>")]  # one token, kept on decode
    assert tok.decode(tok.encode("<loc0007> red")) == "<loc0007> red"

    # instruction tuning from the base keeps its tokenizer and architecture
    mix = tmp_path / "mix"
    mix.mkdir()
    ex = json.loads((shapes_dir / "examples.jsonl").read_text().splitlines()[0])
    line = {"id": "m0", "image": str((shapes_dir / ex["image"]).resolve()), "prefix": ex["question"],
            "suffix": ex["answer"], "task": "label", "source": "t", "weight": 1.0, "example_id": ex["id"]}
    (mix / "train.jsonl").write_text(json.dumps(line) + "\n")
    student = tmp_path / "student"
    r = CliRunner().invoke(app, ["train", "--data", str(mix), "--init", str(base), "--out", str(student),
                                 "--recipe", "smoke", "--steps", "2", "--batch", "1"])
    assert r.exit_code == 0, (r.output, r.exception)
    assert read_meta(student)["init"] == str(base)
    assert read_meta(student)["model"] == read_meta(base)["model"]
    assert (student / "tokenizer.json").read_text() == (base / "tokenizer.json").read_text()
    r = CliRunner().invoke(app, ["train", "--data", str(mix), "--init", str(tmp_path / "missing"), "--out",
                                 str(tmp_path / "x"), "--recipe", "smoke"])
    assert r.exit_code == 2 and "vpd pretrain" in r.output


def test_grid_targets_label_the_centre_cell() -> None:
    from vpd.distill.grid_targets import GROUPS, grid_targets

    objs = [{"shape": "sphere", "color": "blue", "size": "small", "bbox": [0, 0, 20, 20]},
            {"shape": "cube", "color": "red", "size": "large", "bbox": [280, 200, 320, 240]},
            {"shape": "triangle", "color": "cyan", "size": "small", "bbox": [290, 210, 310, 230]}]
    g = grid_targets(objs, 320, 240, 8)
    assert g.shape == (64, len(GROUPS))
    assert tuple(g[0]) == (3, 2, 1)  # blue (index 2) + 1, sphere (1) + 1, small (0) + 1
    assert tuple(g[63]) == (1, 1, 2)  # the larger red cube wins the shared corner cell
    assert (g[1:63] == 0).all()


def test_grid_targets_carry_box_bins_of_the_centre_object() -> None:
    from vpd.distill.grid_targets import (GROUPS, HEAD_WIDTH, IGNORE, box_bins_of, decode_boxes, grid_targets,
                                          head_width)
    from vpd.distill.loc_tokens import box_to_loc

    objs = [{"shape": "cube", "color": "red", "size": "large", "bbox": [100, 60, 160, 120]}]
    g = grid_targets(objs, 320, 240, 8, box_bins=64)
    assert g.shape == (64, len(GROUPS) + 4)
    cell = int(90 / 240 * 8) * 8 + int(130 / 320 * 8)
    assert "".join(f"<loc{v:04d}>" for v in g[cell, 3:]) == box_to_loc(objs[0]["bbox"], 320, 240, 64)
    others = np.delete(g, cell, axis=0)
    assert (others[:, 3:] == IGNORE).all() and (others[:, :3] == 0).all()
    assert head_width(64) == HEAD_WIDTH + 256 and box_bins_of(head_width(64)) == 64 and box_bins_of(HEAD_WIDTH) == 0
    with pytest.raises(ValueError):
        box_bins_of(HEAD_WIDTH + 3)
    # the head read as a detector: one-hot logits of these targets give the box back (bin centres)
    logits = np.full((64, head_width(64)), -9.0)
    logits[:, 0] = 0.0
    logits[cell, 0], logits[cell, 1] = -9.0, 0.0  # an object (colour class 1) only in that cell
    for i, v in enumerate(g[cell, 3:]):
        logits[cell, HEAD_WIDTH + i * 64 + v] = 0.0
    [(c, box)] = decode_boxes(logits, 8, 320, 240, 64)
    assert c == cell and all(abs(a - b) <= 5 for a, b in zip(box, objs[0]["bbox"]))


def test_grid_box_loss_trains_and_is_measured(tmp_path: Path, shapes_dir: Path) -> None:
    """A head with box groups: targets have 7 columns, the box part adds loss that training lowers,
    and grid_quality reports the box-bin accuracy and the dense detector's recall."""
    import jax.numpy as jnp

    from vpd.distill.grid_targets import head_width
    from vpd.distill.pretrain import grid_quality
    from vpd.distill.pretrain_tasks import pretrain_records, read_scenes
    from vpd.distill.vlm_config import preset
    from vpd.distill.vlm_model import build_model
    from vpd.distill.vlm_preprocess import preprocess_image
    from vpd.distill.vlm_tokenizer import train_bpe
    from vpd.distill.vlm_train import TrainConfig, Trainer, grid_loss, init_student, tokenize_mixture

    scenes = read_scenes(shapes_dir)[:4]
    records = pretrain_records(scenes, {"caption": 1})
    cfg = preset("test").replace(vision=dict(grid_head=head_width(16)))
    tok = train_bpe([r["prefix"] + r["suffix"] for r in records], vocab_size=cfg.text.vocab_size)
    grid = cfg.vision.image_size // cfg.vision.patch_size
    data = tokenize_mixture(records, tok, cfg.vision.image_size, 8, 64, grid=grid, grid_box_bins=16)
    assert data.grid.shape == (4, grid * grid, 7) and data.grid[..., 3:].max() > 0
    batch = data.batch(np.arange(4))
    model = build_model(cfg.replace(pad_id=tok.pad_id, eos_id=tok.eos_id, bos_id=tok.bos_id))
    attr_only = jnp.asarray(batch["grid"]).at[..., 3:].set(-1)
    px = jnp.asarray(batch["pixels"])
    assert float(grid_loss(model, model.vision(px), jnp.asarray(batch["grid"])).mean()) > \
        float(grid_loss(model, model.vision(px), attr_only).mean()) + 1.0  # ~log(16) more at init
    trainer = Trainer(model, TrainConfig(steps=30, batch=4, lr=3e-3, warmup_steps=0, max_suffix=64, grid_weight=1.0))
    m = trainer.model()
    before = float(grid_loss(m, m.vision(px), jnp.asarray(batch["grid"])).mean())
    for _ in range(15):
        trainer.step(batch)
    m = trainer.model()
    assert float(grid_loss(m, m.vision(px), jnp.asarray(batch["grid"])).mean()) < 0.7 * before
    q = grid_quality(m, scenes, {sc.image: preprocess_image(sc.image, cfg.vision.image_size) for sc in scenes})
    assert {"box_bins_within_1", "dense_recall@0.5", "dense_precision@0.5", "color_acc"} <= set(q)
    assert 0.0 <= q["dense_recall@0.5"] <= 1.0
    # TrainConfig.grid_boxes widens a preset's head to the four box groups at loc_bins bins
    m2, _, _ = init_student("student-s", ["caption en 1 object"], TrainConfig(loc_bins=64, grid_boxes=True))
    assert m2.config.vision.grid_head == head_width(64)


def test_grid_loss_trains_the_vision_head(tmp_path: Path, shapes_dir: Path) -> None:
    """With grid_weight > 0 the dense head gets gradients and its loss falls on repeated batches."""
    import jax.numpy as jnp

    from vpd.distill.pretrain_tasks import pretrain_records, read_scenes
    from vpd.distill.vlm_config import preset
    from vpd.distill.vlm_model import build_model
    from vpd.distill.vlm_tokenizer import train_bpe
    from vpd.distill.vlm_train import TrainConfig, Trainer, grid_loss, tokenize_mixture

    cfg = preset("test").replace(vision=dict(grid_head=16))
    records = pretrain_records(read_scenes(shapes_dir)[:4], {"caption": 1})
    tok = train_bpe([r["prefix"] + r["suffix"] for r in records], vocab_size=cfg.text.vocab_size)
    grid = cfg.vision.image_size // cfg.vision.patch_size
    data = tokenize_mixture(records, tok, cfg.vision.image_size, 8, 64, grid=grid)
    assert data.grid is not None and data.grid.shape == (4, grid * grid, 3) and data.grid.max() > 0
    batch = data.batch(np.arange(4))
    model = build_model(cfg.replace(pad_id=tok.pad_id, eos_id=tok.eos_id, bos_id=tok.bos_id))
    trainer = Trainer(model, TrainConfig(steps=30, batch=4, lr=3e-3, warmup_steps=0, max_suffix=64, grid_weight=1.0))

    def head_loss() -> float:
        m = trainer.model()
        return float(grid_loss(m, m.vision(jnp.asarray(batch["pixels"])), jnp.asarray(batch["grid"])).mean())

    before = head_loss()
    for _ in range(15):
        trainer.step(batch)
    assert head_loss() < 0.7 * before


def test_caption_quality_scores_by_hand() -> None:
    from vpd.distill.caption_quality import parse_caption, prior_caption_quality, score_captions

    assert parse_caption("2 objects: a large red cube and a small blue sphere.") == (
        2, [("large", "red", "cube"), ("small", "blue", "sphere")])
    assert parse_caption("a red cube") is None
    scenes = [[{"size": "large", "color": "red", "shape": "cube"}, {"size": "small", "color": "blue", "shape": "sphere"}],
              [{"size": "small", "color": "green", "shape": "cone"}]]
    q = score_captions(["2 objects: a large red cube and a large blue cube.", "garbage"], scenes)
    # scene 1: count right, 1 of 2 triples right, both colours right, 1 shape right; scene 2 unparsed
    assert q["count_exact"] == 0.5 and q["unparsed"] == 1 and q["distinct_captions"] == 2
    assert q["object_precision"] == 0.5 and abs(q["object_recall"] - 1 / 3) < 1e-9
    assert abs(q["color_recall"] - 2 / 3) < 1e-9 and abs(q["shape_recall"] - 1 / 3) < 1e-9
    prior = prior_caption_quality(["1 object: a small green cone."] * 3 + ["2 objects: x"], scenes)
    assert prior["caption"] == "1 object: a small green cone." and prior["count_exact"] == 0.5
    assert prior["distinct_captions"] == 1 and abs(prior["object_recall"] - 1 / 3) < 1e-9


def test_find_quality_scores_by_hand() -> None:
    from vpd.distill.caption_quality import parse_listing, score_finds

    red_cube, blue_ball = {"size": "large", "color": "red", "shape": "cube"}, {"size": "small", "color": "blue",
                                                                              "shape": "sphere"}
    assert parse_listing("a large red cube and a small blue sphere") == [("large", "red", "cube"),
                                                                          ("small", "blue", "sphere")]
    assert parse_listing("none") == []
    outputs = ["a large red cube and a small blue sphere", "none", "a large red cube", "none"]
    selected = [[red_cube, blue_ball], [], [blue_ball], [red_cube]]
    q = score_finds(outputs, selected)
    # presence: right, right, right (named something, one was there), wrong (said none, one was there)
    assert q["presence_acc"] == 0.75 and q["count_exact"] == 0.75 and q["exact"] == 0.5
    assert q["object_recall"] == 0.5 and abs(q["object_precision"] - 2 / 3) < 1e-9
    assert q["presence_prior"] == 0.75  # 3 of 4 phrases select something
