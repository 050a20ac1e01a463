"""TallyQA: strict (headline) and extracted counts, simple/complex accuracy and RMSE, by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpd.benchmarks.registry import DataFormatError
from vpd.benchmarks.tallyqa import TallyQA, extract_count, strict_count


@pytest.mark.parametrize("text,expected", [
    ("3", 3), ("There are three dogs.", 3), ("twenty-one", 21), ("twenty one birds", 21),
    ("I count 2.0", 2), ("none", 0), ("No, there aren't any", 0), ("one hundred and five", 105),
    ("several", None), ("", None), ("seventeen", 17),
])
def test_extract_count(text: str, expected: int | None) -> None:
    assert extract_count(text) == expected


def test_simple_complex_accuracy(tmp_path: Path) -> None:
    data = tmp_path / "test.json"
    data.write_text(json.dumps([
        {"answer": 2, "data_source": "amt", "image": "a.jpg", "image_id": 1, "issimple": True, "question": "q1", "question_id": 10},
        {"answer": 0, "data_source": "amt", "image": "a.jpg", "image_id": 1, "issimple": True, "question": "q2", "question_id": 11},
        {"answer": 5, "data_source": "tdiuc", "image": "b.jpg", "image_id": 2, "issimple": False, "question": "q3", "question_id": 12},
        {"answer": 4, "data_source": "tdiuc", "image": "b.jpg", "image_id": 2, "issimple": False, "question": "q4", "question_id": 13},
    ]))
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(json.dumps(r) for r in [
        {"question_id": 10, "prediction": "2"}, {"question_id": 11, "prediction": "none"},
        {"question_id": 12, "prediction": "I see 3 of them"}, {"question_id": 13, "prediction": " 6\n"},
        {"question_id": 99, "prediction": "1"},
    ]))
    res = TallyQA().score_file(data, preds)
    # headline: only whole-integer answers count ("2" right, " 6" parsed but wrong, the rest unparsed)
    assert res.metrics["accuracy"] == 0.25
    assert res.metrics["rmse"] == pytest.approx(((0 + 4) / 2) ** 0.5)  # over the 2 parsed answers
    assert res.slices["subset"]["simple"]["accuracy"] == 0.5
    assert res.slices["subset"]["complex"]["rmse"] == pytest.approx(2.0)
    assert res.counts["unparsed"] == 2 and res.counts["unparsed_extracted"] == 0
    # lenient: "none" -> 0 (right), "I see 3 of them" -> 3 (off by 2)
    assert res.metrics["accuracy_extracted"] == 0.5
    assert res.slices["subset"]["simple"]["accuracy_extracted"] == 1.0
    assert res.metrics["rmse_extracted"] == pytest.approx(((0 + 0 + 4 + 4) / 4) ** 0.5)
    assert res.extra == ("99",) and res.missing == ()
    assert res.slices["data_source"]["amt"]["n"] == 2


@pytest.mark.parametrize("text,expected", [("3", 3), (" 12\n", 12), ("three", None), ("3.0", None), ("-1", None),
                                           ("3 dogs", None), ("", None)])
def test_strict_count(text: str, expected: int | None) -> None:
    assert strict_count(text) == expected


def test_non_integer_answer_names_the_record(tmp_path: Path) -> None:
    data = tmp_path / "t.json"
    data.write_text(json.dumps([{"question_id": 1, "question": "q", "answer": "many"}]))
    with pytest.raises(DataFormatError, match="question_id 1"):
        TallyQA().load(data)
