"""TallyQA: count extraction and simple/complex accuracy."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpd.benchmarks.registry import DataFormatError
from vpd.benchmarks.tallyqa import TallyQA, extract_count


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
        {"question_id": 10, "prediction": "two"}, {"question_id": 11, "prediction": "none"},
        {"question_id": 12, "prediction": "I see 3 of them"}, {"question_id": 99, "prediction": "1"},
    ]))
    res = TallyQA().score_file(data, preds)
    assert res.slices["subset"]["simple"]["accuracy"] == 1.0
    assert res.slices["subset"]["complex"]["accuracy"] == 0.0
    assert res.slices["subset"]["complex"]["rmse"] == pytest.approx(2.0)  # only the parsed answer
    assert res.metrics["accuracy"] == 0.5
    assert res.missing == ("13",) and res.extra == ("99",)
    assert res.slices["data_source"]["amt"]["n"] == 2


def test_non_integer_answer_names_the_record(tmp_path: Path) -> None:
    data = tmp_path / "t.json"
    data.write_text(json.dumps([{"question_id": 1, "question": "q", "answer": "many"}]))
    with pytest.raises(DataFormatError, match="question_id 1"):
        TallyQA().load(data)
