"""A-OKVQA: headline MC/DA = allenai/aokvqa eval_predictions.py (exact match), lenient variants suffixed; by hand."""

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
    assert da_score("The Taxi.", das) == 0.0  # upstream: exact string match
    assert da_score("The Taxi.", das, normalize=True) == pytest.approx(2 / 3)
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
    assert res.metrics["mc_accuracy"] == 0.0  # upstream compares the raw string: "A" is not "rain"
    assert res.metrics["mc_accuracy_extracted"] == pytest.approx(1 / 3)
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
    assert res.metrics["mc_accuracy"] == 1.0 and res.metrics["da_accuracy"] == 1.0


OFFICIAL = Path(__file__).parent / "fixtures" / "aokvqa_eval"


def test_headline_equals_upstream_script_on_official_files() -> None:
    """tests/fixtures/aokvqa_eval holds a val file and upstream's predictions_val.json; upstream's
    ``python evaluation/eval_predictions.py --aokvqa-dir tests/fixtures/aokvqa_eval --split val
    --preds tests/fixtures/aokvqa_eval/predictions_val.json`` prints ``MC 40.0`` and ``DA 50.0``.

    By hand — MC over all 5 (difficult included): "cigarette" and "run" match exactly; "B", "Winter"
    and a missing MC do not -> 2/5. DA over the 4 non-difficult: cigarette (9 annotators) 1,
    "Running." 0, winter 1, "grey" 0 -> 2/4.
    """
    res = AOKVQA().score_file(OFFICIAL / "aokvqa_v1p0_val.json", OFFICIAL / "predictions_val.json")
    assert res.metrics["mc_accuracy"] == pytest.approx(0.40)
    assert res.metrics["da_accuracy"] == pytest.approx(0.50)
    assert res.counts["n_mc"] == 5 and res.counts["n_da"] == 4
    # lenient: "B" -> safety, "Winter" -> winter (MC 4/5); "Running." -> running, 5 annotators (DA 3/4)
    assert res.metrics["mc_accuracy_extracted"] == pytest.approx(0.80)
    assert res.metrics["da_accuracy_normalized"] == pytest.approx(0.75)
    assert res.missing == () and res.bad_lines == ()
