"""GQA: upstream eval.py's exact match over balanced questions, by hand on the release format."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpd.benchmarks.registry import get_benchmark

FIXTURES = Path(__file__).parent / "fixtures" / "importers"


def test_exact_match_over_balanced(tmp_path: Path) -> None:
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(json.dumps(r) for r in [
        {"questionId": "201307251", "prediction": "yes"},  # verify (binary): right
        {"questionId": "201640614", "prediction": "Cat."},  # query (open): wrong upstream, right normalised
        {"questionId": "05515938", "prediction": "blue"},  # query: wrong
        {"questionId": "07333408", "prediction": "man"},  # isBalanced false: not scored
    ]) + "\n")
    res = get_benchmark("gqa").score_file(FIXTURES / "gqa", preds)
    assert res.counts["n"] == 3 and res.counts["not_balanced"] == 1
    assert res.metrics["accuracy"] == pytest.approx(1 / 3)
    assert res.metrics["accuracy_normalized"] == pytest.approx(2 / 3)
    assert res.metrics["binary"] == 1.0 and res.metrics["open"] == 0.0
    assert res.slices["semantic"]["attr"] == {"accuracy": 0.5, "n": 2}
    assert res.extra == ()  # a prediction for an unscored question is not an unknown id


def test_missing_balanced_prediction_scores_zero(tmp_path: Path) -> None:
    preds = tmp_path / "p.jsonl"
    preds.write_text(json.dumps({"questionId": "201307251", "prediction": "yes"}) + "\n")
    res = get_benchmark("gqa").score_file(FIXTURES / "gqa", preds)
    assert res.metrics["accuracy"] == pytest.approx(1 / 3) and set(res.missing) == {"201640614", "05515938"}
