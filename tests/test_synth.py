"""The synth stage: reuse, bad input, resume, no-labels, report (fast tests use Fake executors)."""

from __future__ import annotations

import ast
import json
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from PIL import Image

from vpd.programs.prompt import Prompt
from vpd.programs.sampler_replay import ReplaySampler
from vpd.runs import read_candidates, read_verified
from vpd.synth import LLMProgramWriter, SessionStats, SynthConfig, run_synth
from vpd.synth_report import build_report, pass_at_k
from vpd.types import Trace

HEADER = "def execute_command(image):\n"


def fake_prompter(question, choices):
    opts = " ".join(choices or ())
    return Prompt(text=f"# few-shot …\n# Question: {question} {opts}\n{HEADER}", prefix=HEADER,
                  stop=("\ndef ", "\n# Question"))


@dataclass
class FakeResult:
    status: str
    answer: object = None
    error: str | None = None
    stdout: str = ""
    trace: Trace = field(default_factory=Trace)
    elapsed_s: float = 0.001


class FakeExecutor:
    """Stands in for the sandbox pool: 'runs' a program by reading its literal return value;
    `while True` times out, `raise` errors. Counts jobs."""

    def __init__(self):
        self.jobs = []

    def run_many(self, jobs):
        self.jobs.extend(jobs)
        out = []
        for src, image in jobs:
            if "while True" in src:
                out.append(FakeResult(status="timeout", error="TimeoutError: over 5.0 s"))
                continue
            if "raise" in src:
                out.append(FakeResult(status="error", error="ValueError: boom"))
                continue
            fn = next(n for n in ast.parse(src).body if isinstance(n, ast.FunctionDef) and n.name == "execute_command")
            ret = next(n for n in ast.walk(fn) if isinstance(n, ast.Return))
            out.append(FakeResult(status="ok", answer=ast.literal_eval(ret.value)))
        return out


def make_data(root: Path, rows, bad_lines=(), broken_image_ids=()):
    (root / "images").mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (q, a, qtype) in enumerate(rows):
        img = root / "images" / f"{i}.png"
        if f"e{i}" in broken_image_ids:
            img.write_bytes(b"not a png")
        else:
            Image.new("RGB", (8, 8), (i, 0, 0)).save(img)
        lines.append(json.dumps({"id": f"e{i}", "image": f"images/{i}.png", "question": q, "answer": a,
                                 "choices": None, "qtype": qtype}))
    lines[1:1] = list(bad_lines)
    (root / "examples.jsonl").write_text("\n".join(lines) + "\n")
    return root


def ret(v):
    return f"    return {v!r}\n"


RECORDINGS = {
    ("How many cubes are there?", None): [ret("2"), ret("3"), ret("2"), "    while True:\n        pass\n"],
    ("Is there a red sphere?", None): [ret("yes"), "I think the answer is yes.", ret("no"), "    return (\n"],
}
ROWS = [("How many cubes are there?", "2", "count_simple"), ("Is there a red sphere?", "yes", "exists"),
        ("How many cubes are there?", "3", "count_simple"), ("Is there a red sphere?", "no", "exists"),
        ("How many cubes are there?", "2", "count_simple")]


def run(tmp_path, *, recordings=RECORDINGS, rows=ROWS, executor=None, **cfg_kw):
    data = cfg_kw.pop("data", None) or make_data(tmp_path / "data", rows)
    sampler = ReplaySampler(dict(recordings), name="replay:test")
    stats = SessionStats()
    executor = executor or FakeExecutor()
    cfg = SynthConfig(data=str(data), out=str(tmp_path / "run"), k=4, progress=False, cache="off", **cfg_kw)
    writer = LLMProgramWriter(sampler, tools=None, fewshot=cfg.fewshot, temperature=0.7, max_tokens=64,
                              stats=stats, prompter=fake_prompter, greedy_first=False)
    # the writer's counters go into the session via run_synth's stats object
    import vpd.synth as synth_mod

    orig = synth_mod.SessionStats
    synth_mod.SessionStats = lambda: stats
    try:
        result = run_synth(cfg, writer=writer, executor=executor, sampler=sampler)
    finally:
        synth_mod.SessionStats = orig
    return result, sampler, executor


def test_question_level_reuse_samples_once_per_distinct_question(tmp_path):
    result, sampler, executor = run(tmp_path)
    assert sampler.stats["requests"] == 2  # 5 examples, 2 distinct questions
    assert result.report["llm"]["llm_requests"] == 2
    # every program runs on every image asking its question (dedupe: "2" twice -> once)
    assert len(executor.jobs) == 3 * 3 + 2 * 2


def test_no_reuse_samples_per_example(tmp_path):
    result, sampler, _ = run(tmp_path, reuse=False)
    assert sampler.stats["requests"] == 5


def test_verdicts_categories_and_selection(tmp_path):
    result, _, _ = run(tmp_path)
    rows = {(e.id, c.index): (c, line) for e, c, line in read_candidates(tmp_path / "run")}
    assert rows[("e0", 0)][0].verdict.lenient and rows[("e0", 2)][0].verdict.lenient
    assert rows[("e0", 2)][1]["duplicate_of"] == 0 and rows[("e0", 2)][0].timings["exec_s"] == 0.0
    assert rows[("e0", 1)][0].verdict.category == "wrong_answer"
    assert rows[("e0", 3)][0].verdict.category == "timeout"
    assert rows[("e1", 1)][0].verdict.category == "no_code"  # prose
    assert rows[("e1", 1)][0].raw_completion == "I think the answer is yes."  # raw kept
    assert rows[("e1", 3)][0].verdict.category == "syntax"
    assert rows[("e3", 2)][0].verdict.lenient  # "no" passes for the example labelled no
    verified = {e.id: c.index for e, c in read_verified(tmp_path / "run")}
    assert verified == {"e0": 0, "e1": 0, "e2": 1, "e3": 2, "e4": 0}
    rep = result.report
    assert rep["overall"]["verified_share"] == 1.0
    assert rep["failure_categories"]["timeout"] == 3 and rep["failure_categories"]["no_code"] == 2
    assert rep["by_qtype"]["count_simple"]["examples"] == 3


def test_pass_at_k_estimator():
    assert pass_at_k(4, 0, 1) == 0.0 and pass_at_k(4, 4, 1) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)


def test_selection_rules(tmp_path):
    recs = {("How many cubes are there?", None): [
        "    n = 2\n    m = n\n    return '2'\n", ret("2") , "    x = 1\n    return '2'\n", ret("3")]}
    rows = [("How many cubes are there?", "2", "count_simple")]
    run(tmp_path, recordings=recs, rows=rows, select="shortest")
    assert [c.index for _, c in read_verified(tmp_path / "run")] == [1]


def test_bad_dataset_lines_and_unreadable_images_are_counted(tmp_path):
    data = make_data(tmp_path / "data", ROWS, bad_lines=["{not json", '{"id": "x"}', "[1, 2]"],
                     broken_image_ids=("e1",))
    result, _, executor = run(tmp_path, data=data)
    rep = result.report
    assert rep["input"]["bad_lines"] == 3 and rep["examples"] == 5
    assert rep["image_errors"] == 1 and rep["failure_categories"]["image_error"] == 2  # 2 of its 4 samples have code
    assert all(img != str(data / "images" / "1.png") for _, img in executor.jobs)
    assert "e1" not in {e.id for e, _ in read_verified(tmp_path / "run")}


def test_llm_errors_are_recorded_and_the_run_goes_on(tmp_path):
    recs = {("How many cubes are there?", None): [ret("2")]}  # the other question is unknown -> error
    result, _, _ = run(tmp_path, recordings=recs)
    rows = list(read_candidates(tmp_path / "run"))
    errs = [c for e, c, _ in rows if e.question.startswith("Is there")]
    assert errs and all(c.verdict.category == "llm_error" and "no recorded" in c.error for c in errs)
    assert result.report["examples"] == 5 and result.report["llm"]["llm_errors"] == 4


def test_no_labels_majority_vote(tmp_path):
    result, _, _ = run(tmp_path, labels=False)
    preds = {json.loads(l)["id"]: json.loads(l) for l in (tmp_path / "run" / "predictions.jsonl").read_text().splitlines()}
    assert preds["e0"]["prediction"] == "2" and preds["e0"]["votes"] == {"2": 2, "3": 1}
    assert preds["e1"]["votes"] == {"yes": 1, "no": 1} and preds["e1"]["prediction"] == "yes"  # tie: earliest
    assert not (tmp_path / "run" / "verified.jsonl").read_text()
    overall = result.report["overall"]
    assert overall["answered_share"] == 1.0
    assert overall["majority_accuracy"] == pytest.approx(3 / 5)  # e0, e1, e4 right; e2 (3), e3 (no) wrong


def test_resume_skips_done_examples(tmp_path):
    run(tmp_path, limit=2)
    with pytest.raises(Exception, match="--resume"):
        run(tmp_path, limit=2)
    with pytest.raises(Exception, match="limit"):
        run(tmp_path, limit=5, resume=True)
    first = (tmp_path / "run" / "candidates-00000.jsonl").read_bytes()
    result, sampler, executor = run(tmp_path, limit=2, resume=True)
    assert executor.jobs == [] and sampler.stats["requests"] == 0
    assert (tmp_path / "run" / "candidates-00000.jsonl").read_bytes() == first
    assert result.report["sessions"] == 2
