"""Hateful Memes: AUROC with ties (Mann-Whitney) and accuracy, by hand."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from sklearn.metrics import roc_auc_score

from vpd.benchmarks.hateful_memes import HatefulMemes, auroc, extract_label


def test_auroc_ties_count_half() -> None:
    # positives 0.8, 0.5; negatives 0.5, 0.2: pairs (0.8>0.5)=1, (0.8>0.2)=1, (0.5=0.5)=0.5, (0.5>0.2)=1
    assert auroc([0.8, 0.5, 0.5, 0.2], [1, 1, 0, 0]) == pytest.approx(3.5 / 4)
    assert auroc([0.5] * 4, [1, 0, 1, 0]) == pytest.approx(0.5)
    assert auroc([0.1, 0.9], [1, 0]) == 0.0
    assert auroc([0.3, 0.4], [1, 1]) is None


def test_auroc_matches_sklearn_on_ties() -> None:
    import random

    rng = random.Random(0)
    labels = [rng.randint(0, 1) for _ in range(200)]
    scores = [round(rng.random(), 1) for _ in range(200)]  # many ties
    assert auroc(scores, labels) == pytest.approx(roc_auc_score(labels, scores))


@pytest.mark.parametrize("text,label", [("yes", 1), ("No.", 0), ("This meme is hateful", 1),
                                        ("not hateful", 0), ("non-hateful", 0), ("1", 1), ("hmm", None)])
def test_extract_label(text: str, label: int | None) -> None:
    assert extract_label(text) == label


def test_scores_by_hand(tmp_path: Path) -> None:
    data = tmp_path / "dev.jsonl"
    data.write_text("".join(json.dumps({"id": i, "img": f"img/{i}.png", "label": l, "text": "t"}) + "\n"
                            for i, l in enumerate([1, 1, 0, 0])))
    preds = tmp_path / "p.jsonl"
    preds.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": 0, "prediction": "yes", "score": 0.8}, {"id": 1, "prediction": "no", "score": 0.5},
        {"id": 2, "prediction": "yes", "score": 0.5}, {"id": 3, "prediction": "no", "score": 0.2}]))
    res = HatefulMemes().score_file(data, preds)
    assert res.metrics["auroc"] == pytest.approx(3.5 / 4)
    assert res.metrics["accuracy"] == 0.5
    # a missing meme gets the wrong label and the worst score
    preds.write_text("".join(json.dumps(r) + "\n" for r in [
        {"id": 0, "prediction": "yes", "score": 0.9}, {"id": 2, "prediction": "no", "score": 0.1},
        {"id": 3, "prediction": "no", "score": 0.2}]))
    res = HatefulMemes().score_file(data, preds)
    assert res.missing == ("1",)
    assert res.metrics["accuracy"] == 0.75
    assert res.metrics["auroc"] == pytest.approx(0.5)  # 0.9 beats both negatives, 0.0 beats none


def test_challenge_submission_label_is_used_as_is(tmp_path: Path) -> None:
    """The challenge's own ``id, proba, label`` lines: accuracy from ``label`` (sklearn accuracy_score),
    AUROC from ``proba`` — even where label and proba disagree (the scorer never thresholds)."""
    data = tmp_path / "dev.jsonl"
    data.write_text("\n".join(json.dumps({"id": i, "img": f"img/{i}.png", "text": "t", "label": l})
                              for i, l in [(1, 1), (2, 0), (3, 1), (4, 0)]) + "\n")
    preds = tmp_path / "p.jsonl"
    preds.write_text("\n".join(json.dumps(r) for r in [
        {"id": 1, "proba": 0.9, "label": 1}, {"id": 2, "proba": 0.8, "label": 0},  # label 0 though proba >= 0.5
        {"id": 3, "proba": 0.3, "label": 0}, {"id": 4, "proba": 0.1, "label": 0},
    ]) + "\n")
    res = HatefulMemes().score_file(data, preds)
    assert res.metrics["accuracy"] == pytest.approx(3 / 4)  # ids 1, 2, 4 right
    assert res.metrics["auroc"] == pytest.approx(roc_auc_score([1, 0, 1, 0], [0.9, 0.8, 0.3, 0.1]))  # 0.75
    assert res.counts["label_from_text"] == 0
