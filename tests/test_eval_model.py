"""(slow) `vpd eval --model CKPT` on the shapes test split with a student trained by `vpd train`."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vpd.benchmarks.shapes import make_dataset
from vpd.cli import app


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_eval_student_on_shapes_test_split(tmp_path: Path) -> None:
    data = tmp_path / "shapes"
    make_dataset(data, n=40, seed=2, per_image=2)
    runner = CliRunner()
    r = runner.invoke(app, ["mix", str(data), "--out", str(tmp_path / "mix")])
    assert r.exit_code == 0, (r.output, r.exception)
    r = runner.invoke(app, ["train", "--data", str(tmp_path / "mix"), "--out", str(tmp_path / "ckpt"),
                            "--model", "test", "--recipe", "smoke"])
    assert r.exit_code == 0, (r.output, r.exception)
    out = tmp_path / "eval"
    r = runner.invoke(app, ["eval", "-b", "shapes", "--data", str(data), "--split", "test",
                            "--model", str(tmp_path / "ckpt"), "--out", str(out)])
    assert r.exit_code == 0, (r.output, r.exception)
    d = json.loads((out / "results.json").read_text())
    n_test = sum(1 for line in (data / "examples.jsonl").read_text().splitlines()
                 if json.loads(line).get("split") == "test")
    assert n_test > 0 and d["counts"]["n"] == n_test
    assert d["source"]["kind"] == "model" and len(d["source"]["model_id"]) == 12
    assert 0.0 <= d["metrics"]["accuracy"] <= 1.0 and d["scorer_version"].startswith("shapes")
    preds = [json.loads(l) for l in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == n_test and all("prediction" in p for p in preds)
    assert (out / "results.md").read_text().startswith("# shapes results")
