"""POPE: the official first-sentence rule and hand-computed per-split metrics."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpd.benchmarks.pope import Pope, pope_yes_no


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def pope_split(path: Path, labels: list[str]) -> Path:
    return write_jsonl(path, [{"question_id": i + 1, "image": f"COCO_{i}.jpg", "text": "Is there a dog in the image?",
                               "label": l} for i, l in enumerate(labels)])


@pytest.mark.parametrize("text,expected", [
    ("Yes, there is a dog.", "yes"),
    ("No, there is no dog.", "no"),
    ("There is not a dog in the image", "no"),
    ("Yes. No other animals are visible.", "yes"),  # only the first sentence counts
    ("NO", "yes"),  # case-sensitive words, as upstream
    ("no.", "no"),
    ("Nope", "yes"),
])
def test_official_answer_rule(text: str, expected: str) -> None:
    assert pope_yes_no(text) == expected


def test_metrics_by_hand(tmp_path: Path) -> None:
    data = pope_split(tmp_path / "coco_pope_random.json", ["yes", "yes", "yes", "no", "no"])
    preds = write_jsonl(tmp_path / "p.jsonl", [
        {"question_id": 1, "prediction": "Yes"},  # TP
        {"question_id": 2, "prediction": "Yes."},  # TP
        {"question_id": 3, "prediction": "No, not here"},  # FN
        {"question_id": 4, "prediction": "Yes, a dog."},  # FP
        {"question_id": 5, "prediction": "no"},  # TN
    ])
    res = Pope().score_file(data, preds)
    m = res.slices["split"]["random"]
    assert (m["tp"], m["fp"], m["tn"], m["fn"]) == (2, 1, 1, 1)
    assert res.metrics["accuracy"] == pytest.approx(3 / 5)
    assert res.metrics["precision"] == pytest.approx(2 / 3)
    assert res.metrics["recall"] == pytest.approx(2 / 3)
    assert res.metrics["f1"] == pytest.approx(2 / 3)
    assert res.metrics["yes_ratio"] == pytest.approx(3 / 5)


def test_folder_of_splits_needs_split_field(tmp_path: Path) -> None:
    d = tmp_path / "pope"
    d.mkdir()
    pope_split(d / "coco_pope_random.json", ["yes", "no"])
    pope_split(d / "coco_pope_adversarial.json", ["no", "no"])
    preds = write_jsonl(tmp_path / "p.jsonl", [
        {"question_id": 1, "split": "random", "prediction": "yes"},
        {"question_id": 2, "split": "random", "prediction": "yes"},
        {"question_id": 1, "split": "adversarial", "prediction": "no"},
        {"question_id": 2, "prediction": "no"},  # no split: a bad line, the question counts as missing
    ])
    res = Pope().score_file(d, preds)
    assert list(res.slices["split"]) == ["random", "adversarial"]
    assert res.slices["split"]["random"]["yes_ratio"] == 1.0
    assert res.slices["split"]["adversarial"]["accuracy"] == 0.5  # missing one counted wrong
    assert res.counts["bad_lines"] == 1 and "split" in res.bad_lines[0].error
    assert res.missing == ("adversarial/2",)
    assert res.metrics["accuracy"] == pytest.approx((0.5 + 0.5) / 2)


def test_bad_label_names_the_line(tmp_path: Path) -> None:
    p = write_jsonl(tmp_path / "coco_pope_popular.json", [{"question_id": 1, "text": "q", "label": "maybe"}])
    from vpd.benchmarks.registry import DataFormatError

    with pytest.raises(DataFormatError, match="line 1"):
        Pope().load(p)
