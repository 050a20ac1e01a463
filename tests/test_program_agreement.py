"""Question-level agreement of programs and `vpd rationalize --min-agreement` (fast: replayed
programs and the fake executor of tests/test_synth.py)."""

from __future__ import annotations

import json

from vpd.distill.program_agreement import Agreement, AgreementIndex, agreement_key, program_accuracy
from vpd.distill.rationalize import rationalize_run
from vpd.types import Candidate, Example

from tests.test_synth import ret, run as synth_run

Q = "Is there a red sphere?"
HEADER = "def execute_command(image):\n"
RECORDINGS = {(Q, None): [ret("yes"), ret("no"), ret("yes"), "    raise ValueError()\n"]}
ROWS = [(Q, "yes", "exists"), (Q, "yes", "exists"), (Q, "yes", "exists"), (Q, "no", "exists")]


def _ex() -> Example:
    return Example(id="x", image="x.png", question=Q)


def test_program_accuracy_counts_each_program_once_per_image(tmp_path):
    synth_run(tmp_path, recordings=RECORDINGS, rows=ROWS)
    acc = program_accuracy(tmp_path / "run")
    yes = acc[agreement_key(_ex(), HEADER + ret("yes"))]
    no = acc[agreement_key(_ex(), HEADER + ret("no"))]
    assert (yes.passed, yes.images) == (3, 4)  # sampled twice, counted once per image
    assert (no.passed, no.images) == (1, 4) and no.accuracy == 0.25
    assert len(acc) == 3  # the raising program ran too and never passed
    assert acc[agreement_key(_ex(), HEADER + "    raise ValueError()\n")].passed == 0


def test_min_agreement_skips_lucky_programs_and_loses_nothing(tmp_path):
    synth_run(tmp_path, recordings=RECORDINGS, rows=ROWS)
    run = tmp_path / "run"
    verified = len((run / "verified.jsonl").read_text().splitlines())
    assert verified == 4

    rep = rationalize_run(run, show_progress=False, min_agreement=0.5)
    lines = [json.loads(l) for l in (run / "rationales.jsonl").read_text().splitlines()]
    assert len(lines) == rep.written == verified  # every verified example has a line
    skipped = [l for l in lines if (l["check"]["reason"] or "").startswith("agreement")]
    assert rep.agreement_dropped == len(skipped) == 1
    assert skipped[0]["example"]["id"] == "e3" and skipped[0]["kept"] is False
    assert "1/4" in skipped[0]["check"]["reason"]
    report = json.loads((run / "report.json").read_text())["rationalize"]
    assert report["agreement_dropped"] == 1 and report["min_agreement"] == 0.5

    rep0 = rationalize_run(run, show_progress=False)
    lines0 = [json.loads(l) for l in (run / "rationales.jsonl").read_text().splitlines()]
    assert rep0.agreement_dropped == 0 and len(lines0) == verified
    assert not any((l["check"]["reason"] or "").startswith("agreement") for l in lines0)


def test_best_prefers_the_program_right_most_often_then_synths_choice_then_index():
    ex = _ex()
    lucky, sound, twin = (Candidate(example_id="x", index=i, program=HEADER + ret(a)) for i, a in
                          enumerate(["lucky", "sound", "twin"]))
    acc = {agreement_key(ex, lucky.program): Agreement(passed=77, images=100),
           agreement_key(ex, sound.program): Agreement(passed=100, images=100),
           agreement_key(ex, twin.program): Agreement(passed=100, images=100)}
    index = AgreementIndex(accuracy=acc, passing={"x": [lucky, sound, twin]})
    cand, agree = index.best(ex, prefer=lucky)
    assert cand is sound and agree.accuracy == 1.0  # beats synth's (lucky) choice; ties: lowest index
    assert index.best(ex, prefer=twin)[0] is twin  # a tie goes to synth's choice
    assert index.best(Example(id="y", image="y.png", question=Q)) is None  # nothing passed
    assert index.of(ex, None) is None and index.of(ex, lucky.program).passed == 77
