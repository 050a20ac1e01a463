"""The ablation's arms, statistics and driver (a `--quick` run with the `test` preset)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from vpd.benchmarks.ablation_data import arm_lines, blind_image, equal_exposure_steps, sample_budget
from vpd.benchmarks.ablation_stats import paired_difference, t_interval, wilson


def _mixture(shapes_dir: Path, out: Path) -> Path:
    """Label lines for every train example, and a rationale line for every other one.

    The rationale texts are written here from the scene records (a fake rationale writer: this tests the
    ablation's data plumbing, not rationale quality)."""
    from vpd.datasets import read_examples
    from vpd.distill.mixture import label_prefix, rationale_prefix

    lines = []
    for i, ex in enumerate(e for e in read_examples(shapes_dir)[0] if e.metadata.get("split") == "train"):
        lines.append({"id": f"l{i}", "image": ex.image, "prefix": label_prefix(ex), "suffix": ex.answer,
                      "task": "label", "source": "t", "weight": 1.0, "example_id": ex.id})
        if i % 2 == 0:
            lines.append({"id": f"r{i}", "image": ex.image, "prefix": rationale_prefix(ex),
                          "suffix": f"I looked at the image. So the answer is {ex.answer}.", "task": "rationale",
                          "source": "t", "weight": 1.0, "example_id": ex.id})
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in lines))
    return out


def test_budget_sampling_and_arm_lines(shapes_dir: Path, tmp_path: Path) -> None:
    lines = [json.loads(x) for x in (_mixture(shapes_dir, tmp_path / "m") / "train.jsonl").read_text().splitlines()]
    a, b = sample_budget(lines, 10, 0), sample_budget(lines, 10, 1)
    assert len(set(a)) == 10 and a == sample_budget(list(reversed(lines)), 10, 0)  # order-independent
    assert a != b  # each seed is a different labelled subset
    with pytest.raises(ValueError, match="budget"):
        sample_budget(lines, 10_000, 0)
    label, vpd = arm_lines(lines, "label", a), arm_lines(lines, "vpd", a)
    assert {r["task"] for r in label} == {"label"} and len(label) == 10
    assert [r for r in vpd if r["task"] == "label"] == label
    assert {r["example_id"] for r in vpd} == set(a) and any(r["task"] == "rationale" for r in vpd)
    grey = blind_image(tmp_path)
    blind = arm_lines(lines, "blind", a, blind=grey)
    assert {r["image"] for r in blind} == {str(grey)} and [r["suffix"] for r in blind] == [r["suffix"] for r in label]
    with pytest.raises(ValueError, match="unknown arm"):
        arm_lines(lines, "nope", a)
    # equal exposure: the longer arm trains the same lines as vpd, for proportionally more steps
    assert arm_lines(lines, "vpd-long", a) == vpd
    assert equal_exposure_steps(400, 3870, 3000) == 516 and equal_exposure_steps(400, 3000, 3000) == 400
    assert equal_exposure_steps(10, 5, 10) == 10  # never fewer steps than the label arm
    with pytest.raises(ValueError, match="no training lines"):
        equal_exposure_steps(10, 5, 0)


def test_intervals() -> None:
    ci = t_interval([0.5, 0.6, 0.7])
    assert math.isclose(ci.mean, 0.6) and math.isclose(ci.half_width, 4.302653 * 0.1 / math.sqrt(3), rel_tol=1e-4)
    w = wilson(50, 100)
    assert math.isclose(w.mean, 0.5) and 0.40 < w.low < 0.41 and 0.59 < w.high < 0.60
    for correct in (0, 500):  # the edges: the interval still holds its proportion (a plot's error bars are >= 0)
        e = wilson(correct, 500)
        assert 0.0 <= e.low <= e.mean <= e.high <= 1.0 and e.high - e.low > 0.005
    d = paired_difference([0.6, 0.7, 0.8], [0.5, 0.6, 0.7])
    assert math.isclose(d.mean, 0.1) and math.isclose(d.half_width, 0.0, abs_tol=1e-9)
    assert t_interval([0.4]).n == 1 and math.isnan(t_interval([0.4]).low)


@pytest.mark.slow
def test_quick_ablation_end_to_end(shapes_dir: Path, tmp_path: Path) -> None:
    from vpd.benchmarks.ablation import main

    mix = _mixture(shapes_dir, tmp_path / "mix")
    out = tmp_path / "abl"
    assert main(["--mixture", str(mix), "--test", str(shapes_dir), "--split", "", "--model", "test",
                 "--arms", "blind,label,vpd,vpd-long", "--quick", "--budgets", "8", "--seeds", "2", "--steps", "3",
                 "--limit", "6", "--out", str(out)]) == 0
    report = json.loads((out / "ablation.json").read_text())
    rows = {(r["arm"], r["mode"]): r for r in report["rows"]}
    assert set(rows) == {("blind", "direct"), ("label", "direct"), ("vpd", "direct"), ("vpd", "cot"),
                         ("vpd-long", "direct"), ("vpd-long", "cot")}
    assert all(r["seeds"] == 2 and r["n"] == 2 and 0 <= r["mean"] <= 1 for r in rows.values())
    assert {(d["arm"], d["mode"]) for d in report["differences"]} == {(a, m) for a in ("vpd", "vpd-long")
                                                                      for m in ("direct", "cot")}
    assert 0 <= report["majority"]["accuracy"] <= 1 and report["test_examples"] == 6
    assert (out / "ablation.png").stat().st_size > 0 and "majority" in (out / "ablation.md").read_text().lower()
    score = json.loads((out / "runs" / "b8" / "vpd" / "s0" / "score.json").read_text())
    assert score["train_lines"]["label"] == 8 and score["modes"]["cot"]["n"] == 6 and score["steps"] == 3
    long = json.loads((out / "runs" / "b8" / "vpd-long" / "s0" / "score.json").read_text())
    assert long["train_lines"] == score["train_lines"]  # same lines, each label line seen as often as in label
    assert long["steps"] == round(3 * sum(score["train_lines"].values()) / score["train_lines"]["label"]) > 3
    # resumable: a rerun reuses every finished arm (no training)
    before = (out / "runs" / "b8" / "vpd" / "s0" / "score.json").stat().st_mtime
    main(["--mixture", str(mix), "--test", str(shapes_dir), "--split", "", "--model", "test", "--arms",
          "blind,label,vpd", "--quick", "--budgets", "8", "--seeds", "2", "--steps", "3", "--limit", "6",
          "--out", str(out)])
    assert (out / "runs" / "b8" / "vpd" / "s0" / "score.json").stat().st_mtime == before
    # --report-only trains nothing: a missing seed and a missing budget are left out, not trained
    main(["--mixture", str(mix), "--test", str(shapes_dir), "--split", "", "--model", "test", "--arms",
          "blind,label,vpd", "--budgets", "8,16", "--seeds", "3", "--limit", "6", "--report-only", "--out", str(out)])
    assert not (out / "runs" / "b8" / "label" / "s2").exists() and not (out / "runs" / "b16").exists()
    report = json.loads((out / "ablation.json").read_text())
    assert {(r["budget"], r["seeds"]) for r in report["rows"]} == {(8, 2)}


def test_held_out_difficulty_is_read_from_the_examples() -> None:
    from vpd.benchmarks.ablation import held_out_difficulty
    from vpd.types import Example

    def ex(i: int, **meta: str) -> Example:
        return Example(id=str(i), image="x.png", question="q", answer="1", qtype="t", metadata=dict(meta))

    assert held_out_difficulty([ex(0)]) == "easy"  # datasets made before the dial
    assert held_out_difficulty([ex(0, difficulty="hard"), ex(1, difficulty="hard")]) == "hard"
    assert held_out_difficulty([ex(0, difficulty="hard"), ex(1, difficulty="medium")]) == "hard,medium"


def test_replay_draws_the_bases_pretraining_records(tmp_path: Path) -> None:
    from vpd.benchmarks.ablation_data import replay_lines

    base = tmp_path / "base"
    (base / "pretrain_data").mkdir(parents=True)
    recs = [{"id": f"pt-{i}", "task": "pretrain:caption", "prefix": "caption en", "suffix": f"{i} objects: …",
             "image": f"/img/{i}.png", "example_id": f"s{i}"} for i in range(50)]
    (base / "pretrain_data" / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
    a, b = replay_lines(base, 10, 0), replay_lines(base, 10, 1)
    assert len(a) == 10 and len({r["id"] for r in a}) == 10 and all(r in recs for r in a)
    assert a == replay_lines(base, 10, 0) and a != b  # seeded, and each seed draws its own
    assert replay_lines(base, 0, 0) == [] and len(replay_lines(base, 500, 0)) == 50
    with pytest.raises(FileNotFoundError, match="vpd pretrain"):
        replay_lines(tmp_path / "nobase", 5, 0)


def test_grid_weight_keeps_training_the_bases_grid_head(shapes_dir: Path, tmp_path: Path) -> None:
    """``--grid-weight`` reaches instruction tuning: the replayed scene records train the base's dense
    head (without it the head gets no gradient: only weight decay moves it, by far less)."""
    import numpy as np
    from typer.testing import CliRunner

    from vpd.benchmarks.ablation import main
    from vpd.cli import app
    from vpd.distill.grid_targets import HEAD_WIDTH
    from vpd.distill.vlm_checkpoint import flat_params, load_student

    base = tmp_path / "base"
    r = CliRunner().invoke(app, ["pretrain", "--data", str(shapes_dir), "--out", str(base), "--model", "student-s",
                                 "--steps", "2", "--batch", "2", "--loc-bins", "16", "--eval-scenes", "0"])
    assert r.exit_code == 0, (r.output, r.exception)
    mix = _mixture(shapes_dir, tmp_path / "mix")

    def head(ckpt: Path) -> dict:
        from flax import nnx

        model = load_student(ckpt)[0]
        return {k: np.asarray(v) for k, v in flat_params(nnx.state(model)).items() if "grid_head" in k}

    heads = {}
    for weight in ("0", "1"):
        out = tmp_path / f"abl{weight}"
        assert main(["--mixture", str(mix), "--test", str(shapes_dir), "--split", "", "--base", str(base),
                     "--arms", "label", "--budgets", "4", "--seeds", "1", "--steps", "2", "--batch", "2",
                     "--limit", "2", "--replay-pretrain", "4", "--grid-weight", weight, "--out", str(out)]) == 0
        score = json.loads((out / "runs" / "b4" / "label" / "s0" / "score.json").read_text())
        assert score["grid_weight"] == float(weight) and score["train_lines"]["label"] == 4
        heads[weight] = head(out / "runs" / "b4" / "label" / "s0" / "student")
    before = head(base)
    assert before and set(before) == set(heads["1"])
    assert {v.shape[-1] for v in before.values()} == {HEAD_WIDTH}  # --grid-boxes is off by default
    moved = {w: max(float(np.abs(h[k] - before[k]).max()) for k in before) for w, h in heads.items()}
    print("largest grid-head change by --grid-weight:", moved)
    assert moved["1"] > 10 * moved["0"]  # Adam steps of ~lr vs weight decay's lr * wd * |w|
