"""VQAv2 / OK-VQA: the official VQA accuracy by hand (conditional normalisation, 10-choose-9 mean)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpd.benchmarks.okvqa import OKVQA
from vpd.benchmarks.registry import DataFormatError, get_benchmark
from vpd.benchmarks.vqav2 import VQAv2, vqa_accuracy

FIXTURES = Path(__file__).parent / "fixtures" / "importers"
MIXED = ["frisbee"] * 4 + ["Frisbee!"] + ["disc"] * 3 + ["a frisbee", "toy"]  # normalises to 6 frisbee, 3 disc, 1 toy


def test_unanimous_answers_compare_exactly() -> None:
    assert vqa_accuracy("2", ["2"] * 10) == 1.0
    assert vqa_accuracy(" 2\n", ["2"] * 10) == 1.0  # newlines/tabs and outer spaces always go
    assert vqa_accuracy("two", ["2"] * 10) == 0.0  # upstream normalises only when annotators disagree


@pytest.mark.parametrize("pred,expected", [
    ("Frisbee", 1.0),  # 6 agree: every 9-subset holds >= 5 matches
    ("disc", (3 * (2 / 3) + 7 * 1.0) / 10),  # 0.9: leaving out a 'disc' annotator leaves 2 matches
    ("toy", (1 * 0.0 + 9 * (1 / 3)) / 10),  # 0.3
    ("the disc.", 0.9),  # article and period removed (the annotators disagree)
    ("ball", 0.0),
])
def test_subset_average(pred: str, expected: float) -> None:
    assert vqa_accuracy(pred, MIXED) == pytest.approx(expected)


def test_yes_no_nine_to_one() -> None:
    answers = ["no"] * 9 + ["yes"]
    assert vqa_accuracy("No", answers) == 1.0
    assert vqa_accuracy("Yes.", answers) == pytest.approx(0.3)


def test_vqav2_fixture_by_hand(tmp_path: Path) -> None:
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(json.dumps(r) for r in [
        {"question_id": 42000, "answer": "two"},  # upstream results field name; unanimous "2" -> 0
        {"question_id": 42001, "prediction": "disc"},  # 0.9
        {"question_id": 73000, "prediction": "Yes."},  # 0.3
        {"question_id": 5, "prediction": "x"},
    ]) + "\n")
    res = get_benchmark("vqav2").score_file(FIXTURES / "vqav2", preds)
    assert res.counts["n"] == 3  # the annotated questions
    assert res.metrics["accuracy"] == pytest.approx((0.0 + 0.9 + 0.3) / 3)
    assert res.slices["answer_type"]["yes/no"]["accuracy"] == pytest.approx(0.3)
    assert res.slices["answer_type"]["number"]["accuracy"] == 0.0
    assert res.extra == ("5",) and res.scorer_version.startswith("vqav2-1.0")


def test_vqav2_missing_prediction_scores_zero(tmp_path: Path) -> None:
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"question_id": 42001, "prediction": "frisbee"}) + "\n")
    res = VQAv2().score_file(FIXTURES / "vqav2", preds)
    assert res.metrics["accuracy"] == pytest.approx(1 / 3) and res.missing == ("42000", "73000")


def _okvqa(tmp_path: Path, answers: list[list[str]]) -> Path:
    d = tmp_path / "okvqa"
    d.mkdir()
    qs = [{"image_id": 42, "question": f"q{i}?", "question_id": 100 + i} for i in range(len(answers))]
    anns = [{"image_id": 42, "answer_type": "other", "question_type": "eight", "question_id": 100 + i, "confidence": 3,
             "answers": [{"answer": a, "raw_answer": a.upper(), "answer_confidence": "yes", "answer_id": j + 1}
                         for j, a in enumerate(ans)]} for i, ans in enumerate(answers)]
    (d / "OpenEnded_mscoco_val2014_questions.json").write_text(json.dumps({"questions": qs}))
    (d / "mscoco_val2014_annotations.json").write_text(json.dumps({"annotations": anns, "data_subtype": "val2014"}))
    return d


def test_okvqa_by_hand(tmp_path: Path) -> None:
    race = ["race"] * 2 + ["racing"] * 2 + ["motocross"] * 2 + ["ride"] * 2 + ["race"] * 2
    data = _okvqa(tmp_path, [race, race, ["oak"] * 10])
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(json.dumps(r) for r in [
        {"question_id": 100, "prediction": "race"},  # 4 annotators: 1.0
        {"question_id": 101, "prediction": "Racing"},  # 2 annotators: (2 * 1/3 + 8 * 2/3) / 10 = 0.6
        {"question_id": 102, "prediction": "an oak"},  # unanimous -> exact -> 0
    ]) + "\n")
    res = OKVQA().score_file(data, preds)
    assert [r["correct"] for r in res.per_item] == pytest.approx([1.0, 0.6, 0.0])
    assert res.metrics["accuracy"] == pytest.approx(1.6 / 3)
    assert res.benchmark == "okvqa" and res.scorer_version.startswith("okvqa-1.0")


def test_annotation_without_answers_names_it() -> None:
    with pytest.raises(DataFormatError, match="question_id 420006"):
        OKVQA().load(FIXTURES / "okvqa")


@pytest.mark.parametrize("text,expected", [
    ("Two Dogs.", "2 dogs"), ("the  cab!", "cab"), ("dont", "don't"), ("3.5", "3.5"),
    ("1,000 people", "1000 people"),  # a 1,000-style number: punctuation removed outright
    ("red/blue", "red blue"), ("red / blue", "red blue"), ("isnt it", "isn't it"), ("an apple", "apple"),
])
def test_normalisation_as_upstream(text: str, expected: str) -> None:
    from vpd.benchmarks.vqa_normalize import normalize_vqa

    assert normalize_vqa(text) == expected
