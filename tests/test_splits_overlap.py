"""Splits respected end to end: mix/lskd/synth take a split, a mixture records its images by
content hash, a student carries the record, and `vpd eval` refuses to score on training images."""

from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from distill_fixtures import make_shapes_run  # noqa: E402

from vpd.cli import app  # noqa: E402
from vpd.distill.image_overlap import (TRAINING_IMAGES_FILE, TrainingOverlapError, check_training_overlap,  # noqa: E402
                                       file_sha256, read_training_images, record_training_images)
from vpd.distill.mixture import build_mixture  # noqa: E402
from vpd.splits import default_eval_split, eval_split, in_split, normalize_split  # noqa: E402
from vpd.types import Example  # noqa: E402

runner = CliRunner()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    root = tmp_path_factory.mktemp("splits")
    data, run, _ = make_shapes_run(root, n=20, seed=5)
    lines = [json.loads(line) for line in (data / "examples.jsonl").read_text().splitlines()]
    by_split: dict[str, set[str]] = {}
    for rec in lines:
        by_split.setdefault(rec["split"], set()).add(str((data / rec["image"]).resolve()))
    assert {"train", "test"} <= set(by_split)
    return root, data, run, by_split


def _hashes(paths) -> set[str]:
    return {file_sha256(p) for p in paths}


def test_split_selection_rules(tmp_path):
    ex = Example(id="1", image="x", question="q", metadata={"split": "test"})
    bare = Example(id="2", image="x", question="q")
    assert in_split(ex, "test") and not in_split(ex, "train") and in_split(ex, "all") and in_split(ex, None)
    assert in_split(bare, "train")  # no split field: cannot be placed, kept everywhere
    assert in_split({"split": "val"}, "val") and not in_split({"split": "val"}, "train")  # LSKD records
    assert normalize_split("all") is None and normalize_split(" train ") == "train"
    assert eval_split(["train", "val", "test"]) == "test" and eval_split(["train", "val"]) == "val"
    assert eval_split(["train", None]) is None
    (tmp_path / "examples.jsonl").write_text(json.dumps({"id": "a", "image": "a.png", "question": "q",
                                                        "split": "val"}) + "\n")
    assert default_eval_split(tmp_path) == "val" and default_eval_split(tmp_path / "missing") is None


def test_mixture_keeps_its_split_and_records_image_hashes(world, tmp_path):
    root, data, run, by_split = world
    from vpd.distill.lskd_run import LskdConfig, run_lskd

    lskd = tmp_path / "lskd"  # over every split: its triples carry their image's split
    run_lskd(LskdConfig(data=str(data), out=str(lskd), llm=None, negatives=False, per_image=2),
             show_progress=False)
    triples = [json.loads(line) for line in (lskd / "lskd.jsonl").read_text().splitlines()]
    assert {t["split"] for t in triples} >= {"train", "test"}

    rep = build_mixture([run, lskd], tmp_path / "mix", val_frac=0.2, split="train")
    rows = [json.loads(line) for s in ("train", "val")
            for line in (tmp_path / "mix" / f"{s}.jsonl").read_text().splitlines()]
    originals = {r["regions"]["image"] if r["task"] == "lskd" else r["image"] for r in rows}
    assert rows and originals <= by_split["train"]
    assert {r["task"] for r in rows} == {"label", "rationale", "lskd"}
    assert rep.other_split.get("label", 0) > 0 and rep.other_split.get("lskd", 0) > 0
    manifest = json.loads((tmp_path / "mix" / "manifest.json").read_text())
    assert manifest["split"] == "train"
    recorded = {h for hs in manifest["image_sha256"].values() for h in hs}
    assert recorded == _hashes(originals)
    assert not recorded & _hashes(by_split["test"])

    every = build_mixture([run], tmp_path / "mix_all", split="all")
    assert every.split is None and not every.other_split
    assert {h for hs in every.image_sha256.values() for h in hs} >= _hashes(by_split["test"])


def test_overlap_is_by_content_not_by_path(world, tmp_path):
    root, data, run, by_split = world
    build_mixture([run], tmp_path / "mix", split="train")
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    record_training_images(tmp_path / "mix", ckpt)
    assert read_training_images(ckpt) == _hashes(by_split["train"])
    train_img = sorted(by_split["train"])[0]
    copy = tmp_path / "renamed.png"
    shutil.copy(train_img, copy)  # the same picture under another name
    with pytest.raises(TrainingOverlapError, match="1 of 2 evaluated images.*--allow-overlap"):
        check_training_overlap(ckpt, [str(copy), sorted(by_split["test"])[0]])
    rep = check_training_overlap(ckpt, [str(copy)], allow=True)
    assert rep.checked and rep.overlapping == 1 and "renamed.png" in rep.message()
    assert check_training_overlap(ckpt, sorted(by_split["test"])).overlapping == 0
    assert not check_training_overlap(tmp_path, [str(copy)]).checked  # no record: not checked, said so


def test_vpd_eval_refuses_a_student_whose_mixture_holds_test_images(world, tmp_path):
    """CLI refusal path. The student folder holds only what `vpd train` writes first (the training
    image record, :func:`record_training_images`): the refusal comes before any model is loaded."""
    root, data, run, by_split = world
    res = runner.invoke(app, ["mix", str(data), "--out", str(tmp_path / "mix"), "--split", "all"])
    assert res.exit_code == 0, res.output
    student = tmp_path / "student"
    student.mkdir()
    record_training_images(tmp_path / "mix", student)
    assert (student / TRAINING_IMAGES_FILE).is_file()
    res = runner.invoke(app, ["eval", "-b", "shapes", "--data", str(data), "--model", str(student),
                              "--out", str(tmp_path / "eval")])
    assert res.exit_code == 2
    out = " ".join(res.output.split())
    assert "evaluating split 'test'" in out  # the default evaluation split
    n_test = len(by_split["test"])
    assert f"refusing to evaluate {student}: {n_test} of {n_test} evaluated images are training images" in out
    assert "--allow-overlap" in out
    assert not (tmp_path / "eval" / "results.json").exists()

    # the default `vpd mix` split (train) holds no test image: the same check lets it through
    res = runner.invoke(app, ["mix", str(data), "--out", str(tmp_path / "mix_train")])
    assert res.exit_code == 0 and "dataset split train" in " ".join(res.output.split())
    record_training_images(tmp_path / "mix_train", student)
    assert check_training_overlap(student, sorted(by_split["test"])).overlapping == 0


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_trained_student_refused_then_allowed_with_a_warning(world, tmp_path):
    """End to end with a real (tiny) student trained on a mixture that holds the test split."""
    root, data, run, by_split = world
    assert runner.invoke(app, ["mix", str(data), "--out", str(tmp_path / "mix"), "--split", "all"]).exit_code == 0
    res = runner.invoke(app, ["train", "--data", str(tmp_path / "mix"), "--out", str(tmp_path / "ckpt"),
                              "--model", "test", "--recipe", "smoke"])
    assert res.exit_code == 0, (res.output, res.exception)
    record = json.loads((tmp_path / "ckpt" / TRAINING_IMAGES_FILE).read_text())
    assert record["source"] == "manifest" and set(record["sha256"]) >= _hashes(by_split["test"])
    base = ["eval", "-b", "shapes", "--data", str(data), "--model", str(tmp_path / "ckpt"), "--out", str(tmp_path / "ev")]
    res = runner.invoke(app, base)
    assert res.exit_code == 2 and "refusing to evaluate" in res.output
    res = runner.invoke(app, base + ["--allow-overlap"])
    assert res.exit_code == 0, (res.output, res.exception)
    results = json.loads((tmp_path / "ev" / "results.json").read_text())
    n_test = len(by_split["test"])
    assert results["counts"]["training_overlap"] == n_test
    assert any(n.startswith(f"WARNING: {n_test} of {n_test} evaluated images") for n in results["notes"])
