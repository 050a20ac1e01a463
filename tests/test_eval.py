"""`vpd eval` from a predictions file: results.json/.md, provenance, compare, CLI, bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vpd.cli import app
from vpd.evaluation import compare_results, evaluate_predictions, load_results, write_results


def pope(tmp_path: Path) -> tuple[Path, Path]:
    data = tmp_path / "coco_pope_random.json"
    data.write_text("".join(json.dumps({"question_id": i, "image": f"missing_{i}.jpg", "text": "Is there a cat?",
                                        "label": l}) + "\n" for i, l in enumerate(["yes", "no", "yes", "no"])))
    preds = tmp_path / "preds.jsonl"
    preds.write_text("".join(json.dumps({"question_id": i, "prediction": p}) + "\n"
                             for i, p in enumerate(["Yes, a cat.", "No.", "No", "There is a cat."])))
    return data, preds


def test_results_files_and_provenance(tmp_path: Path) -> None:
    data, preds = pope(tmp_path)  # the images do not exist: scoring must not need them
    rec = evaluate_predictions("pope", data, preds)
    path = write_results(rec, tmp_path / "out")
    d = json.loads(path.read_text())
    assert d["metrics"]["accuracy"] == 0.5 and d["metrics"]["yes_ratio"] == 0.5
    assert d["scorer_version"].startswith("pope-") and len(d["data_hash"]) == 16
    assert d["source"]["kind"] == "predictions" and "POPE" in d["reference"]
    md = (tmp_path / "out" / "results.md").read_text()
    assert "| accuracy | 0.5000 |" in md and "## by split" in md
    rows = [json.loads(l) for l in (tmp_path / "out" / "per_item.jsonl").read_text().splitlines()]
    assert [r["correct"] for r in rows] == [1, 1, 0, 0]


def test_data_hash_changes_with_data(tmp_path: Path) -> None:
    data, preds = pope(tmp_path)
    h1 = evaluate_predictions("pope", data, preds).data_hash
    data.write_text(data.read_text().replace('"label": "no"', '"label": "yes"', 1))
    assert evaluate_predictions("pope", data, preds).data_hash != h1


def test_compare_two_results(tmp_path: Path) -> None:
    data, preds = pope(tmp_path)
    a = write_results(evaluate_predictions("pope", data, preds), tmp_path / "a")
    preds.write_text("".join(json.dumps({"question_id": i, "prediction": p}) + "\n"
                             for i, p in enumerate(["yes", "no", "yes", "no"])))
    b = write_results(evaluate_predictions("pope", data, preds), tmp_path / "b")
    notes, rows = compare_results(a, b.parent)
    acc = next(r for r in rows if r[0] == "accuracy")
    assert acc == ["accuracy", "0.5000", "1.0000", "+0.5000"]
    assert notes == []
    assert load_results(tmp_path / "b")["metrics"]["f1"] == 1.0


def test_cli_eval_and_compare(tmp_path: Path) -> None:
    data, preds = pope(tmp_path)
    runner = CliRunner()
    r = runner.invoke(app, ["eval", "--benchmark", "pope", "--data", str(data), "--predictions", str(preds),
                            "--out", str(tmp_path / "o")])
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "o" / "results.json").read_text())["counts"]["n"] == 4
    r = runner.invoke(app, ["eval", "--compare", str(tmp_path / "o"), str(tmp_path / "o")])
    assert r.exit_code == 0 and "+0.0000" in r.output
    r = runner.invoke(app, ["eval", "--benchmark", "popee", "--data", str(data), "--predictions", str(preds)])
    assert r.exit_code != 0 and "did you mean 'pope'" in str(r.exception)


def test_cli_strict_rejects_missing_ids(tmp_path: Path) -> None:
    data, preds = pope(tmp_path)
    preds.write_text(preds.read_text().splitlines()[0] + "\n" + "not json\n")
    runner = CliRunner()
    r = runner.invoke(app, ["eval", "-b", "pope", "--data", str(data), "--predictions", str(preds),
                            "--out", str(tmp_path / "o")])
    assert r.exit_code == 0
    d = json.loads((tmp_path / "o" / "results.json").read_text())
    assert d["counts"]["missing"] == 3 and d["counts"]["bad_lines"] == 1 and d["bad_lines"][0]["line"] == 2
    r = runner.invoke(app, ["eval", "-b", "pope", "--data", str(data), "--predictions", str(preds), "--strict",
                            "--out", str(tmp_path / "o2")])
    assert r.exit_code != 0 and "missing" in str(r.exception)


def test_exactly_one_prediction_source(tmp_path: Path) -> None:
    data, preds = pope(tmp_path)
    r = CliRunner().invoke(app, ["eval", "-b", "pope", "--data", str(data)])
    assert r.exit_code != 0 and "exactly one" in r.output
