"""The shapes world as a benchmark, sliced by question type."""

from __future__ import annotations

import json
from pathlib import Path

from vpd.benchmarks.registry import get_benchmark
from vpd.benchmarks.shapes import make_dataset


def test_shapes_scoring_per_qtype(tmp_path: Path) -> None:
    make_dataset(tmp_path / "ds", n=12, seed=3)
    bench = get_benchmark("shapes")
    items = bench.load(tmp_path / "ds")
    assert {it.slices["qtype"] for it in items} >= {"count_simple", "exists"}
    wrong = {it.id for it in items if it.slices["qtype"] == "exists"}
    preds = tmp_path / "p.jsonl"
    with preds.open("w") as fh:
        for it in items:
            if it.id in wrong:
                ans = "no" if it.gold == "yes" else "yes"
            elif it.choices:
                ans = it.choices["ABCDEFG".index(it.gold)]  # the option text: lenient match
            else:
                ans = it.gold
            fh.write(json.dumps({"id": it.id, "prediction": ans}) + "\n")
    res = bench.score_file(tmp_path / "ds", preds)
    assert res.slices["qtype"]["exists"]["accuracy"] == 0.0
    assert res.slices["qtype"]["count_simple"]["accuracy"] == 1.0
    assert res.metrics["accuracy"] == (len(items) - len(wrong)) / len(items)
    if any(it.choices for it in items):
        assert res.slices["qtype"]["choice"]["strict_accuracy"] < res.slices["qtype"]["choice"]["accuracy"]


def test_split_filter(tmp_path: Path) -> None:
    make_dataset(tmp_path / "ds", n=20, seed=1)
    lines = [json.loads(l) for l in (tmp_path / "ds" / "examples.jsonl").read_text().splitlines()]
    items = get_benchmark("shapes").__class__(split="train").load(tmp_path / "ds")
    assert len(items) == sum(1 for l in lines if l["split"] == "train")
