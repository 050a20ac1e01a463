"""Scoring a student's own Find sentences against the scene records of the questions it answered."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpd.benchmarks.ablation_data import held_out_examples
from vpd.benchmarks.rationale_grounding import find_sentences, grounding, main, phrase_selector, read_predictions
from vpd.distill.pretrain_tasks import named_list


def _listing(objects: list[dict]) -> str:
    return named_list(objects) if objects else "none"


def test_find_sentences_and_phrases() -> None:
    text = "Find red cubes: a large red cube. Find object: none. Zooming in. So the answer is 1."
    assert find_sentences(text) == [("red cubes", "a large red cube"), ("object", "none")]
    keep = phrase_selector("large red cubes")
    assert keep({"size": "large", "color": "red", "shape": "cube"})
    assert not keep({"size": "small", "color": "red", "shape": "cube"})
    assert phrase_selector("objects")({"size": "small", "color": "blue", "shape": "sphere"})
    assert phrase_selector("shiny widget") is None


def test_grounding_splits_cot_accuracy_by_listing(shapes_dir: Path, tmp_path: Path) -> None:
    examples = held_out_examples(shapes_dir, None, 30)
    counts = [e for e in examples if e.qtype == "count_simple"]
    assert counts, "the fixture should hold a count_simple question"
    preds: dict[str, dict] = {}
    for i, e in enumerate(examples):
        scene = e.metadata["scene"]
        if e in counts:  # an exact listing of the whole scene, answered with the number listed
            preds[e.id] = {"rationale": f"Find object: {_listing(scene)}. So the answer is {len(scene)}.",
                           "cot": str(len(scene))}
        elif i % 2 == 0:  # exact listing, right answer
            preds[e.id] = {"rationale": f"Find object: {_listing(scene)}. So the answer is {e.answer}.",
                           "cot": str(e.answer)}
        else:  # a wrong listing (says nothing is there), wrong answer, and one unscored phrase
            preds[e.id] = {"rationale": "Find object: none. Find shiny widget: none. So the answer is zzz.",
                           "cot": "zzz"}
    g = grounding("fake", preds, examples)
    wrong = sum(1 for i, e in enumerate(examples) if e not in counts and i % 2 == 1)
    assert g.questions == len(examples) and g.with_find == len(examples)
    assert g.unscored == wrong and g.find_sentences == len(examples) + wrong
    assert (g.n_grounded, g.n_misgrounded, g.n_no_find) == (len(examples) - wrong, wrong, 0)
    assert g.cot_misgrounded == 0.0
    assert g.finds["exact"] == pytest.approx((len(examples) - wrong) / len(examples))
    assert g.finds["presence_acc"] == pytest.approx((len(examples) - wrong) / len(examples))
    assert g.count_one_find == len(counts) and g.count_follows_listing == 1.0
    # count questions are right exactly when the scene count is the label
    assert 0.0 < g.cot_grounded <= 1.0

    run = tmp_path / "run"
    run.mkdir()
    (run / "predictions.jsonl").write_text("".join(json.dumps({"id": i, **p}) + "\n" for i, p in preds.items()))
    assert read_predictions(run) == preds
    out = tmp_path / "g"
    assert main(["--test", str(shapes_dir), "--split", "", "--limit", "30", "--run", f"fake={run}",
                 "--out", str(out)]) == 0
    saved = json.loads((out / "grounding.json").read_text())["runs"][0]
    assert saved["n_misgrounded"] == wrong and "| fake | 30 |" in (out / "grounding.md").read_text()


def test_reads_rationalize_output_and_rejects_missing(tmp_path: Path, capsys) -> None:
    rows = [{"example": {"id": "a"}, "rationale": "Find cube: none. Thus, the answer is 0.", "answer": "0", "kept": True},
            {"example": {"id": "b"}, "rationale": "x", "answer": "1", "kept": False}]
    path = tmp_path / "rationales.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert read_predictions(path) == {"a": {"rationale": rows[0]["rationale"], "cot": "0"}}
    with pytest.raises(FileNotFoundError):
        read_predictions(tmp_path / "nowhere")
    assert main(["--test", str(tmp_path), "--run", "x=y", "--out", str(tmp_path / "o")]) == 2
    assert "no examples file" in capsys.readouterr().err
