"""VPD's path for data without labels: `vpd synth --no-labels` (k = 1 by default) records the
program chosen by majority vote with its trace; `vpd rationalize` turns it into a rationale."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from vpd.cli import app
from vpd.selection import majority_choice
from vpd.types import Candidate

runner = CliRunner()

COUNT = "    objects = image_patch.find('object')\n    return str(len(objects))\n"


def _unlabelled(src: Path, dst: Path, n: int) -> list[dict]:
    """The first ``n`` examples of a shapes dataset with their answers removed (images shared)."""
    dst.mkdir(parents=True)
    rows = []
    for line in (src / "examples.jsonl").read_text().splitlines()[:n]:
        rec = json.loads(line)
        rec.pop("answer", None)
        rec["image"] = str((src / rec["image"]).resolve())
        rows.append(rec)
    (dst / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    return rows


def _replay(rows: list[dict], path: Path) -> Path:
    """Recorded completions: the same real counting program for every question."""
    seen = {(r["question"], tuple(r["choices"]) if r.get("choices") else None) for r in rows}
    path.write_text("".join(json.dumps({"question": q, "choices": list(c) if c else None,
                                        "completions": [COUNT, COUNT]}) + "\n" for q, c in seen))
    return path


def test_no_labels_synth_then_rationalize_end_to_end(shapes_dir, tmp_path):
    rows = _unlabelled(shapes_dir, tmp_path / "data", 12)
    train = [r for r in rows if r.get("split") == "train"]
    assert train and len(train) < len(rows)  # the default split (train) leaves the others out
    rec = _replay(rows, tmp_path / "rec.jsonl")
    run = tmp_path / "run"
    res = runner.invoke(app, ["synth", "--data", str(tmp_path / "data"), "--out", str(run), "--llm", f"replay:{rec}",
                              "--no-labels", "--fewshot", "fixed", "--cache", "memory", "--quiet"])
    assert res.exit_code == 0, (res.output, res.exception)
    config = json.loads((run / "manifest.json").read_text())["config"]
    assert config["k"] == 1 and config["labels"] is False and config["split"] == "train"

    preds = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert sorted(p["id"] for p in preds) == sorted(r["id"] for r in train)
    for p in preds:
        assert p["n_candidates"] == 1 and p["chosen"] == 0
        assert p["candidate"]["answer"] == p["prediction"] and p["example"]["id"] == p["id"]
        calls = p["candidate"]["trace"]["calls"]
        assert calls and calls[0]["tool"] in ("find", "detect")
    assert not (run / "verified.jsonl").read_text()  # nothing is verified without labels

    res = runner.invoke(app, ["rationalize", str(run)])
    assert res.exit_code == 0, (res.output, res.exception)
    assert f"({len(train)} unlabelled" in res.output
    rationales = [json.loads(line) for line in (run / "rationales.jsonl").read_text().splitlines()]
    assert sorted(r["example"]["id"] for r in rationales) == sorted(p["id"] for p in preds)
    by_id = {p["id"]: p for p in preds}
    for r in rationales:
        assert r["kept"] and r["example"]["answer"] is None
        assert r["answer"] == by_id[r["example"]["id"]]["prediction"]
        assert r["rationale"].rstrip(".").endswith(str(r["answer"])) and "Detect" in r["trace_text"]
    report = json.loads((run / "report.json").read_text())["rationalize"]
    assert report["unlabelled"] == len(train) and report["kept"] == len(train)

    # the rationales reach a mixture as the rationale task (answer = the program's)
    res = runner.invoke(app, ["mix", str(run), "--out", str(tmp_path / "mix"), "--val-frac", "0"])
    assert res.exit_code == 0, (res.output, res.exception)
    mixed = [json.loads(line) for line in (tmp_path / "mix" / "train.jsonl").read_text().splitlines()]
    assert sorted(m["example_id"] for m in mixed if m["task"] == "rationale") == sorted(by_id)
    assert not [m for m in mixed if m["task"] == "label"]  # no labels, no label task


def _cand(i: int, answer, status: str = "ok", program: str | None = "p") -> Candidate:
    return Candidate(example_id="e", index=i, program=program, status=status, answer=answer)


def test_majority_choice_is_the_first_candidate_with_the_majority_answer():
    cands = [_cand(0, "2", status="error"), _cand(1, "3"), _cand(2, "two"), _cand(3, "2")]
    norm = {"two": "2"}.get
    answer, votes, chosen = majority_choice(cands, lambda a: norm(a, a))
    assert votes == {"3": 1, "2": 2} and answer == "two" and chosen == 2
    assert majority_choice([_cand(0, None, status="timeout")], str) == (None, {}, None)
