"""(slow) `vpd demo --size tiny` through the CLI: every stage with the packaged offline Gemma, checked
by the files each stage leaves behind."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

STAGES = ["data", "load LLM", "synth", "rationalize", "lskd", "mix", "train", "evaluate", "view"]


def _jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_demo_tiny_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from vpd.cli import app
    from vpd.demo import SIZES

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # what run_demo sets, but undone after the test
    preset = SIZES["tiny"]
    out = tmp_path / "demo"
    r = CliRunner().invoke(app, ["demo", "--size", "tiny", "--out", str(out)])
    assert r.exit_code == 0, (r.output[-4000:], r.exception)

    # the summary: every stage ran, in order, and the numbers it reports are the files' numbers
    summary = json.loads((out / "demo.json").read_text())
    assert summary["size"] == "tiny" and Path(summary["out"]) == out.resolve()
    assert list(summary["seconds"]) == STAGES and list(summary["notes"]) == STAGES
    assert all(s >= 0 for s in summary["seconds"].values())
    assert summary["total_s"] >= sum(summary["seconds"].values())
    acc = summary["student_accuracy"]
    assert isinstance(acc, float) and 0.0 <= acc <= 1.0

    # data: the synth subset is the chosen distinct questions; the test split is capped by the preset
    train = _jsonl(out / "train" / "examples.jsonl")
    train_all = _jsonl(out / "train_all" / "examples.jsonl")
    test = _jsonl(out / "test" / "examples.jsonl")
    assert 1 <= len(train) <= preset.max_examples
    assert 1 <= len({(e["question"], json.dumps(e["choices"])) for e in train}) <= preset.questions
    assert {e["id"] for e in train} <= {e["id"] for e in train_all}
    assert 1 <= len(test) <= preset.test_examples
    assert not {e["image"] for e in test} & {e["image"] for e in train_all}  # splits are by scene

    # synth: k candidates per example, at least one verified program, verified.jsonl agrees with the report
    report = json.loads((out / "synth" / "report.json").read_text())
    overall = report["overall"]
    assert overall["examples"] == len(train)
    assert overall["candidates"] == preset.k * len(train)
    verified = _jsonl(out / "synth" / "verified.jsonl")
    assert len(verified) >= 1
    assert len(verified) == round(overall["verified_share"] * overall["examples"])
    for v in verified:
        cand = v["candidate"]
        assert "def execute_command" in cand["program"] and cand["status"] == "ok"
        assert cand["verdict"]["lenient"] is True
        assert cand["trace"]["calls"], "a verified program must have called a tool"
        assert v["example"]["id"] in {e["id"] for e in train}

    # rationales: at most one per verified example
    rationales = _jsonl(out / "synth" / "rationales.jsonl")
    assert 1 <= len(rationales) <= len(verified)

    # LSKD: the preset's images, and lskd.jsonl holds exactly the triples the critic kept
    lskd = json.loads((out / "lskd" / "report.json").read_text())["lskd"]
    assert lskd["images"] == preset.lskd_images
    assert sum(lskd["triples"].values()) >= 1
    assert len(_jsonl(out / "lskd" / "lskd.jsonl")) == lskd["kept"]

    # mixture: a label for every train example, every rationale, the kept LSKD triples; a LLaVA export
    mix = json.loads((out / "mix" / "manifest.json").read_text())
    counts = {split: mix["counts"].get(split, {}) for split in ("train", "val")}
    assert sum(c.get("label", 0) for c in counts.values()) == len(train_all)
    assert sum(c.get("rationale", 0) for c in counts.values()) == len(rationales)
    assert sum(c.get("lskd", 0) for c in counts.values()) == lskd["kept"]
    assert not mix["errors"] and mix["bad_lines"] == 0
    llava = json.loads((out / "mix" / "llava" / "llava_train.json").read_text())
    assert len(llava) == len(_jsonl(out / "mix" / "train.jsonl"))

    # train: a checkpoint at the last step, one finite loss per step
    student = out / "student"
    assert (student / "config.json").is_file() and (student / "tokenizer.json").is_file()
    assert (student / "state" / str(preset.steps)).is_dir()
    metrics = _jsonl(student / "metrics.jsonl")
    assert [m["step"] for m in metrics] == list(range(1, preset.steps + 1))
    assert all(math.isfinite(m["loss"]) for m in metrics)

    # evaluate: every test question scored, the accuracy is the summary's, the slices add up
    results = json.loads((out / "synth" / "eval-student" / "results.json").read_text())
    assert results["benchmark"] == "shapes" and results["source"]["kind"] == "model"
    assert results["counts"]["n"] == len(test)
    assert results["counts"]["missing"] == 0 and results["counts"]["bad_lines"] == 0
    assert results["metrics"]["accuracy"] == acc
    assert sum(s["n"] for s in results["slices"]["qtype"].values()) == len(test)

    # view: the HTML report, which picked up the student's eval
    html = Path(summary["report"])
    assert html == out.resolve() / "synth" / "report.html"
    assert "<html" in html.read_text().lower()
    assert "eval-student" in (html.parent / "report_files" / "summary.js").read_text()
