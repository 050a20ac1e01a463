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
from vpd.synth import SynthConfig, run_synth
from vpd.synth_config import SessionStats
from vpd.synth_writer import LLMProgramWriter
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
    # a session SIGKILLed before its counters were saved: the committed candidates still tell
    manifest_path = tmp_path / "run" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    for session in manifest["sessions"]:
        session["image_errors"] = 0
    manifest_path.write_text(json.dumps(manifest))
    assert build_report(tmp_path / "run")["image_errors"] == 1


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


# --------------------------------------------------------------------------------------------
# With the real sandbox and the shapes backend
# --------------------------------------------------------------------------------------------

GENERIC = [
    # a real program: counts the objects named after "many"
    "    words = '{q}'.lower().rstrip('?').split()\n    name = words[2] if len(words) > 2 else 'object'\n"
    "    return str(len(image_patch.find(name)))\n",
    "    return bool_to_yesno(image_patch.exists('object'))\n",
    "Sure! Here is how I would do it: look at the image and count.",                  # prose, no code
    "    x = = 1\n    y = 2\n    z = 3\n    return 'A'\n",                               # syntax error
    "    while True:\n        pass\n",                                                   # infinite loop
    "    return helper(image_patch)\n\ndef helper(p):\n    return 'A'\n\ndef unused():\n    return 1\n",  # several functions
]


def write_replay(data: Path, out: Path, completions=GENERIC) -> Path:
    from vpd.datasets import read_examples

    examples, _ = read_examples(data)
    seen = {}
    for ex in examples:
        seen.setdefault((ex.question, ex.choices), [c.replace("{q}", ex.question.replace("'", "")) for c in completions])
    with out.open("w") as fh:
        for (q, ch), comps in seen.items():
            fh.write(json.dumps({"question": q, "choices": ch, "completions": comps}) + "\n")
    return out


def test_bad_completions_through_the_real_sandbox(shapes_dir, tmp_path):
    from vpd.programs.sampler_base import load_sampler
    import vpd.programs.sampler_replay  # noqa: F401

    rec = write_replay(shapes_dir, tmp_path / "rec.jsonl")
    cfg = SynthConfig(data=str(shapes_dir), out=str(tmp_path / "run"), llm=f"replay:{rec}", k=6, limit=6,
                      fewshot="fixed", cache="memory", timeout_s=1.0, progress=False)
    rep = run_synth(cfg).report
    by = {}
    for ex, c, line in read_candidates(tmp_path / "run"):
        by.setdefault(c.index, set()).add(c.verdict.category)
    assert by[2] == {"no_code"} and by[3] == {"syntax"} and by[4] == {"timeout"}
    # several functions: the prompt's stop strings end the completion at "\ndef ", so the helper
    # never arrives; the call fails at run time and is recorded as such
    assert by[5] == {"program_error"}
    assert by[0] <= {"none", "wrong_answer"} and by[1] <= {"none", "wrong_answer"}
    assert rep["examples"] == 6 and rep["failure_categories"]["timeout"] == 6
    assert rep["tools"]["calls"] > 0
    errs = [c.error for _, c, _ in read_candidates(tmp_path / "run") if c.index == 5]
    assert all("helper" in e for e in errs)


def _serve(mode):
    """A tiny HTTP server answering every request with 429 or, for "slow", after 3 s."""
    import http.server
    import threading
    import time

    class H(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if mode == "slow":
                time.sleep(3)
            try:
                self.send_response(429 if mode == "429" else 200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Retry-After", "0")
                self.end_headers()
                self.wfile.write(b'{"error": {"message": "rate limited"}}')
            except OSError:
                pass  # the client gave up (timed out) first

        def log_message(self, *a):
            pass

    srv = http.server.ThreadingHTTPServer(("127.0.0.1", 0), H)
    threading.Thread(target=srv.serve_forever, daemon=True).start()
    return srv


@pytest.mark.parametrize("mode", ["429", "slow", "refused"])
def test_llm_server_failures_are_recorded_and_the_run_goes_on(tmp_path, mode):
    from vpd.programs.sampler_openai import OpenAISampler

    srv = None
    if mode == "refused":
        import socket

        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()  # nothing listens there now
    else:
        srv = _serve(mode)
        port = srv.server_address[1]
    sampler = OpenAISampler("m", f"http://127.0.0.1:{port}/v1", max_retries=1, backoff_s=0.01,
                            backoff_max_s=0.02, timeout_s=0.5)
    data = make_data(tmp_path / "data", ROWS[:2])
    cfg = SynthConfig(data=str(data), out=str(tmp_path / "run"), llm="openai", k=2, progress=False, cache="off",
                      fewshot="fixed", temperature=0.0)
    from vpd.synth_failures import InfrastructureFailureError

    try:
        # every candidate failed at the LLM: the session does not "finish", it stops (resumable)
        with pytest.raises(InfrastructureFailureError, match="every candidate"):
            run_synth(cfg, sampler=sampler, executor=FakeExecutor())
    finally:
        if srv is not None:
            srv.shutdown()
    rep = json.loads((tmp_path / "run" / "report.json").read_text())
    cands = [c for _, c, _ in read_candidates(tmp_path / "run")]
    assert len(cands) == 4 and all(c.verdict.category == "llm_error" and c.error for c in cands)
    assert rep["examples"] == 2 and rep["llm"]["llm_errors"] == 4
    assert rep["retryable"] == 2 and "--resume" in rep["stopped"]
    assert sampler.stats["retries"] >= 1


def _verdicts(run: Path):
    out = {}
    for ex, c, _ in read_candidates(run):
        key = (ex.id, c.index)
        assert key not in out, f"duplicate candidate {key}"
        out[key] = (c.status, c.answer, c.verdict.strict, c.verdict.lenient, c.verdict.category)
    return out


@pytest.mark.slow
@pytest.mark.parametrize("sig", ["SIGKILL", "SIGINT"])
def test_sigkill_mid_run_then_resume_matches_uninterrupted(shapes_dir, tmp_path, sig):
    """SIGKILL: no clean-up at all. SIGINT (Ctrl-C in a terminal, sent to the foreground process
    group): the CLI stops promptly with exit code 130 and says how to resume."""
    import os
    import signal
    import subprocess
    import sys
    import time

    rec = write_replay(shapes_dir, tmp_path / "rec.jsonl")
    base = [sys.executable, "-m", "vpd.cli.synth_main", "--data", str(shapes_dir), "--llm", f"replay:{rec}",
            "--k", "6", "--fewshot", "fixed", "--cache", "off", "--timeout", "0.5", "--quiet", "--seed", "3",
            "--split", "all"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1"}
    full = subprocess.run(base + ["--out", str(tmp_path / "A")], env=env, capture_output=True, text=True, timeout=300)
    assert full.returncode == 0, full.stderr[-2000:]

    proc = subprocess.Popen(base + ["--out", str(tmp_path / "B")], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, start_new_session=True,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    shard = tmp_path / "B" / "candidates-00000.jsonl"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if shard.exists() and shard.stat().st_size > 0 and shard.read_bytes().count(b"\n") >= 6 * 8:
            break
        time.sleep(0.05)
    assert proc.poll() is None, "the run finished before it could be killed"
    os.killpg(proc.pid, getattr(signal, sig))  # as a terminal does: the whole foreground process group
    _, stderr = proc.communicate(timeout=30)
    if sig == "SIGINT":
        assert proc.returncode == 130 and "--resume" in stderr.decode(), stderr[-2000:]
    partial = _verdicts(tmp_path / "B")
    assert 0 < len({e for e, _ in partial}) < 40

    resumed = subprocess.run(base + ["--out", str(tmp_path / "B"), "--resume"], env=env, capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    a, b = _verdicts(tmp_path / "A"), _verdicts(tmp_path / "B")
    assert set(a) == set(b) and len({e for e, _ in a}) == 40
    assert a == b
    va = sorted(e.id for e, _ in read_verified(tmp_path / "A"))
    vb = sorted(e.id for e, _ in read_verified(tmp_path / "B"))
    assert va == vb and len(vb) == len(set(vb))
    report = json.loads((tmp_path / "B" / "report.json").read_text())
    assert report["examples"] == 40
    # the killed session is on record only if it reached a checkpoint (every 10 s) before the kill
    assert report["sessions"] in (1, 2)


def test_prompt_tokens_are_counted_once_per_request(tmp_path):
    """A request of n = k completions sends its prompt once: the report must not count it k times."""
    from vpd.programs.sampler_base import Completion, Sampler

    class FakeSampler(Sampler):
        """Answers every prompt with k copies of a fixed program; each completion says its prompt
        took 100 tokens, as OpenAI-compatible servers report it."""

        kind = "fake"
        mixes_greedy_in_one_request = True

        def __init__(self):
            super().__init__(name="fake")
            self.requests = 0

        def generate(self, prompts, *, n=1, temperature=0.0, max_tokens=256, stop=None, seed=None):
            self.requests += len(prompts)
            return [[Completion(text="    return '2'", prompt_tokens=100, completion_tokens=5)] * n
                    for _ in prompts]

        def generate_k(self, prompts, *, k, temperature, greedy_first=False, max_tokens=256, stop=None, seed=None):
            return self.generate(prompts, n=k, temperature=temperature)

    sampler = FakeSampler()
    data = make_data(tmp_path / "data", ROWS)
    cfg = SynthConfig(data=str(data), out=str(tmp_path / "run"), llm="fake", k=3, progress=False, cache="off",
                      fewshot="fixed")
    rep = run_synth(cfg, sampler=sampler, executor=FakeExecutor()).report
    assert sampler.requests == 2  # two distinct questions
    assert rep["llm"]["llm_requests"] == 2
    assert rep["llm"]["prompt_tokens"] == 200
    assert rep["llm"]["completion_tokens"] == 2 * 3 * 5


def test_resume_refuses_a_changed_prompt_unless_allowed(tmp_path, monkeypatch):
    """The manifest records a fingerprint of the real prompt (API section + library); a resume whose
    prompts differ — here a changed examples intro nobody versioned — stops with a clear error."""
    import vpd.programs.prompt as prompt_mod
    from vpd.runs import ConfigMismatchError

    data = make_data(tmp_path / "data", ROWS)

    def go(**kw):
        sampler = ReplaySampler(dict(RECORDINGS), name="replay:test")
        cfg = SynthConfig(data=str(data), out=str(tmp_path / "run"), k=4, progress=False, cache="off",
                          fewshot="fixed", **kw)
        writer = LLMProgramWriter(sampler, tools=None, fewshot="fixed", temperature=0.7, max_tokens=64,
                                  stats=SessionStats(), greedy_first=False)
        return run_synth(cfg, writer=writer, executor=FakeExecutor(), sampler=sampler)

    go(limit=2)
    manifest = lambda: json.loads((tmp_path / "run" / "manifest.json").read_text())  # noqa: E731
    first = manifest()["versions"]["prompt_fingerprint"]
    assert first.startswith(prompt_mod.PROMPT_VERSION + "+")
    go(limit=2, resume=True)  # same prompt: fine
    monkeypatch.setattr(prompt_mod, "EXAMPLES_INTRO", prompt_mod.EXAMPLES_INTRO + "# (edited)\n")
    monkeypatch.setattr(prompt_mod, "_BUILDERS", {})
    with pytest.raises(ConfigMismatchError, match="prompt changed"):
        go(limit=2, resume=True)
    go(limit=2, resume=True, allow_prompt_change=True)
    m = manifest()
    assert m["versions"]["prompt_fingerprint"] == first  # the run's own stays the first session's
    seen = [s["prompt_fingerprint"] for s in m["sessions"]]
    assert seen[0] == first and seen[-1] != first and seen[-1].startswith(prompt_mod.PROMPT_VERSION + "+")
