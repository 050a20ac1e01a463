"""A-OKVQA: MC exact match and the DA three-annotator cap, by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpd.benchmarks.aokvqa import AOKVQA, da_score
from vpd.benchmarks.vqa_normalize import normalize_vqa


def test_vqa_normalisation() -> None:
    assert normalize_vqa("Two Dogs.") == "2 dogs"
    assert normalize_vqa("the  cab!") == "cab"
    assert normalize_vqa("dont") == "don't"


def test_da_cap_at_three_annotators() -> None:
    das = ["cab", "cab", "taxi", "cab", "cab", "bus", "taxi", "car", "car", "car"]
    assert da_score("cab", das) == 1.0  # 4 matches, capped
    assert da_score("taxi", das) == pytest.approx(2 / 3)
    assert da_score("bus", das) == pytest.approx(1 / 3)
    assert da_score("The Taxi.", das) == pytest.approx(2 / 3)  # normalised
    assert da_score("The Taxi.", das, normalize=False) == 0.0
    assert da_score("train", das) == 0.0


def test_scores_by_hand(tmp_path: Path) -> None:
    data = tmp_path / "aokvqa_v1p0_val.json"
    data.write_text(json.dumps([
        {"question_id": "q1", "image_id": 1, "question": "What is he awaiting?", "choices": ["skateboarder", "train", "delivery", "cab"],
         "correct_choice_idx": 3, "direct_answers": ["cab"] * 4 + ["taxi"] * 2 + ["bus"] * 4, "difficult_direct_answer": False},
        {"question_id": "q2", "image_id": 2, "question": "Why?", "choices": ["rain", "sun", "snow", "wind"],
         "correct_choice_idx": 0, "direct_answers": ["rain"] * 10, "difficult_direct_answer": True},
        {"question_id": "q3", "image_id": 3, "question": "What?", "choices": ["a", "b", "c", "d"],
         "correct_choice_idx": 1, "direct_answers": ["b"] * 10, "difficult_direct_answer": False},
    ]))
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(json.dumps(r) for r in [
        {"question_id": "q1", "prediction": "taxi"},  # MC: no choice named -> wrong; DA 2/3
        {"question_id": "q2", "prediction": "A"},  # MC: letter A -> rain, right; DA: difficult, not scored
    ]))
    res = AOKVQA().score_file(data, preds)
    assert res.metrics["mc_accuracy"] == pytest.approx(1 / 3)
    assert res.metrics["mc_accuracy_raw"] == 0.0  # upstream compares the raw string
    assert res.counts["n_da"] == 2
    assert res.metrics["da_accuracy"] == pytest.approx((2 / 3 + 0.0) / 2)  # q3 missing -> 0
    assert res.missing == ("q3",)


def test_upstream_prediction_fields(tmp_path: Path) -> None:
    data = tmp_path / "v.json"
    data.write_text(json.dumps([{"question_id": "q", "question": "?", "choices": ["x", "y"], "correct_choice_idx": 1,
                                 "direct_answers": ["z"] * 10, "difficult_direct_answer": False}]))
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"question_id": "q", "multiple_choice": "y", "direct_answer": "z"}) + "\n")
    res = AOKVQA().score_file(data, preds)
    assert res.metrics["mc_accuracy_raw"] == 1.0 and res.metrics["da_accuracy"] == 1.0
