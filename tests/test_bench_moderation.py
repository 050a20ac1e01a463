"""The synthetic moderation memes: deterministic, labels follow the written policy."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from vpd.benchmarks.moderation import INSULT_WORDS, make_meme, make_memes
from vpd.benchmarks.registry import get_benchmark


def test_labels_follow_the_policy(tmp_path: Path) -> None:
    summary = make_memes(tmp_path, 40, seed=2)
    scenes = json.loads((tmp_path / "dataset.json").read_text())["scenes"]
    recs = [json.loads(l) for s in ("train", "dev", "test") for l in (tmp_path / f"{s}.jsonl").read_text().splitlines()]
    assert len(recs) == 40 and (tmp_path / "policy.md").read_text().startswith("# Content policy")
    cases = set()
    for r in recs:
        insult = any(w in r["text"] for w in INSULT_WORDS)
        present = r["color"] in {o["color"] for o in scenes[str(r["id"])]}
        assert r["color"] in r["text"]
        assert r["label"] == int(insult and present), r
        cases.add(r["case"])
        assert (tmp_path / r["img"]).is_file()
    assert cases == {"insult_present", "insult_absent", "praise_present", "praise_absent"}
    assert sum(summary["hateful"].values()) == sum(r["label"] for r in recs)


def test_meme_is_deterministic_and_independent_of_n(tmp_path: Path) -> None:
    m1, img1 = make_meme(5, 3)
    m2, img2 = make_meme(5, 3)
    assert m1 == m2 and np.array_equal(np.asarray(img1), np.asarray(img2))
    assert make_meme(6, 3)[0].text != m1.text or make_meme(6, 3)[0].scene != m1.scene


def test_moderation_benchmark_slices_by_case(tmp_path: Path) -> None:
    make_memes(tmp_path, 30, seed=0)
    bench = get_benchmark("moderation")
    items = bench.load(tmp_path / "train.jsonl")
    preds = tmp_path / "p.jsonl"
    # a text-only "model": flags every insult, so it fails exactly the insult_absent confounders
    preds.write_text("".join(json.dumps({"id": int(it.id), "prediction": "yes" if any(w in it.raw["text"] for w in INSULT_WORDS) else "no",
                                         "score": 0.9 if any(w in it.raw["text"] for w in INSULT_WORDS) else 0.1}) + "\n"
                             for it in items))
    res = bench.score_file(tmp_path / "train.jsonl", preds)
    sl = res.slices["case"]
    assert sl["insult_present"]["accuracy"] == 1.0 and sl["praise_present"]["accuracy"] == 1.0
    if "insult_absent" in sl:
        assert sl["insult_absent"]["accuracy"] == 0.0
        assert res.metrics["accuracy"] < 1.0


@pytest.mark.slow
def test_caption_is_readable_by_rapidocr(tmp_path: Path) -> None:
    from rapidocr_onnxruntime import RapidOCR

    meme, img = make_meme(0, 1)
    result, _ = RapidOCR()(np.asarray(img))
    text = "".join(r[1] for r in result).replace(" ", "").lower()
    assert meme.text.replace(" ", "").lower() in text
