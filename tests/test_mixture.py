"""Mixtures: VPD multitask format, LSKD items, weights, dedupe, split by image."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))

from distill_fixtures import make_shapes_run  # noqa: E402

from vpd.cli import app  # noqa: E402
from vpd.distill.mixture import (LABEL_INSTRUCTION, RATIONALE_INSTRUCTION, build_mixture, parse_weights,  # noqa: E402
                                 question_text, rationale_suffix)
from vpd.distill.rationalize import rationalize_run  # noqa: E402
from vpd.types import Example  # noqa: E402

runner = CliRunner()
KEYS = {"id", "image", "prefix", "suffix", "task", "source", "weight", "example_id"}


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("mix")
    data, run, counts = make_shapes_run(root, n=12, seed=5)
    rationalize_run(run, show_progress=False)
    # a small LSKD run (verbaliser triples, no critic needed for the mixture)
    from vpd.distill.lskd_run import LskdConfig, run_lskd

    lskd = root / "lskd"
    run_lskd(LskdConfig(data=str(data), out=str(lskd), llm=None, negatives=False, max_images=4, per_image=3),
             show_progress=False)
    return root, run, lskd, counts


def _read(ds, split):
    return [json.loads(l) for l in (ds / f"{split}.jsonl").read_text().splitlines()]


def test_mixture_formats_follow_the_contract(runs, tmp_path):
    root, run, lskd, counts = runs
    ds = tmp_path / "ds"
    rep = build_mixture([run, lskd], ds, val_frac=0.3, seed=1)
    recs = _read(ds, "train") + _read(ds, "val")
    assert recs and all(set(r) == (KEYS | {"regions"} if r["task"] == "lskd" else KEYS) for r in recs)
    by_task = {t: [r for r in recs if r["task"] == t] for t in ("label", "rationale", "lskd")}
    assert len(by_task["label"]) == counts["examples"]  # label task on every example
    assert len(by_task["rationale"]) == counts["passed"]  # rationale task on verified ones
    assert by_task["lskd"]
    for r in by_task["label"]:
        assert r["prefix"].endswith("\n" + LABEL_INSTRUCTION) and Path(r["image"]).is_absolute()
    for r in by_task["rationale"]:
        assert r["prefix"].endswith("\n" + RATIONALE_INSTRUCTION)
        assert "Thus, the answer is" not in r["suffix"]
        ex_answer = next(l["suffix"] for l in by_task["label"] if l["example_id"] == r["example_id"])
        assert r["suffix"].endswith(f" So the answer is {ex_answer}.")
    mc = [r for r in by_task["label"] if "\nA. " in r["prefix"]]
    assert mc and all(r["suffix"] in "ABCD" for r in mc)
    for r in by_task["lskd"]:
        assert Path(r["image"]).is_file() and "/regions/" in r["image"]
        assert "[" in r["prefix"]
        # the clean image and the boxes, for per-sample region shuffling in training
        assert Path(r["regions"]["image"]).is_file() and "/regions/" not in r["regions"]["image"]
        assert {int(ref["name"]) for ref in r["regions"]["references"]} >= {
            int(k) for k in re.findall(r"\[(\d+)\]", r["prefix"] + r["suffix"])}
    # split by image: no original image on both sides
    def imgs(split):
        return {r["image"] for r in _read(ds, split) if r["task"] != "lskd"}
    assert not (imgs("train") & imgs("val"))
    man = json.loads((ds / "manifest.json").read_text())
    assert man["sources"] == [run.name, lskd.name]
    assert sum(man["counts"]["train"].values()) == len(_read(ds, "train"))


def test_weights_dedupe_and_zero_weight(runs, tmp_path):
    root, run, lskd, counts = runs
    ds = tmp_path / "w"
    rep = build_mixture([run, run], ds, weights=f"rationale=2.5,label=0,{run.name}=2", val_frac=0.0)
    recs = _read(ds, "train")
    assert rep.duplicates == counts["examples"] + counts["passed"]  # the second copy of the run is all duplicates
    assert all(r["task"] == "rationale" and r["weight"] == 5.0 for r in recs)
    assert rep.zero_weight == counts["examples"]
    with pytest.raises(ValueError, match="unknown tasks/sources"):
        build_mixture([run], tmp_path / "x", weights="lable=1")
    with pytest.raises(ValueError, match="not a number"):
        parse_weights("label=abc")


def test_rationale_suffix_and_choice_text():
    assert rationale_suffix("There is one cube, at 1 2 3 4. Thus, the answer is 1.", "1") == \
        "There is one cube, at 1 2 3 4. So the answer is 1."
    assert rationale_suffix("Depth is 0.5. Thus, the answer is 3.5.", "3.5") == "Depth is 0.5. So the answer is 3.5."
    assert rationale_suffix("no final sentence", "yes") == "no final sentence. So the answer is yes."
    ex = Example(id="1", image="x", question="What color?", choices=("red", "blue"))
    assert question_text(ex) == "What color?\nA. red\nB. blue"


def test_mix_cli_with_exports_and_bad_lines(runs, tmp_path):
    root, run, lskd, counts = runs
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "verified.jsonl").write_text((run / "verified.jsonl").read_text().splitlines()[0] + "\n{oops\n")
    ds = tmp_path / "cli"
    res = runner.invoke(app, ["mix", str(run), str(broken), "--out", str(ds), "--val-frac", "0.2", "--export", "llava,hf"])
    assert res.exit_code == 0, res.output
    man = json.loads((ds / "manifest.json").read_text())
    assert man["bad_lines"] >= 1
    assert any("template rationales" in n for n in man["notes"])  # broken run had no rationales.jsonl
    assert (ds / "export-llava" / "llava_train.json").is_file()
    assert (ds / "export-hf" / "dataset_dict.json").is_file()


def test_lskd_target_format_option(runs, tmp_path):
    root, run, lskd, counts = runs
    vpd_recs = {r["id"]: r for r in _read_all(build_mixture, [lskd], tmp_path / "vpd") if r["task"] == "lskd"}
    res = runner.invoke(app, ["mix", str(lskd), "--out", str(tmp_path / "lk"), "--lskd-format", "lskd",
                              "--split", "all"])  # all: as the Python-API mixture above
    assert res.exit_code == 0, res.output
    lk = {r["id"]: r for r in _read(tmp_path / "lk", "train") + _read(tmp_path / "lk", "val") if r["task"] == "lskd"}
    assert lk and lk.keys() == vpd_recs.keys()
    for key, r in lk.items():
        m = re.fullmatch(r"Answer: (.+?) Rationale: (.+)", r["suffix"])
        assert m, r["suffix"]
        v = vpd_recs[key]["suffix"]  # same answer and rationale, in VPD's order
        assert v.endswith(f"So the answer is {m.group(1).rstrip('.')}.") and m.group(2).rstrip(".") in v
        assert r["prefix"] == vpd_recs[key]["prefix"]
    assert json.loads((tmp_path / "lk" / "manifest.json").read_text())["lskd_format"] == "lskd"
    bad = runner.invoke(app, ["mix", str(lskd), "--out", str(tmp_path / "bad"), "--lskd-format", "llava"])
    assert bad.exit_code == 2 and "unknown LSKD target format" in bad.output


def _read_all(build, runs, ds):
    build(runs, ds)
    return _read(ds, "train") + _read(ds, "val")
