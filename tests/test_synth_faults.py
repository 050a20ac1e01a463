"""The fault matrix of ``vpd synth``: what happens *after* an LLM outage or a tool backend failure.

* LLM outage (every request answers 500 or drops the connection): the session stops with exit 3
  after ``--max-infra-failures`` consecutive ``llm_error`` candidates; ``--resume`` against a
  healthy server at **another address** (same model) redoes exactly the failed examples plus the
  ones never reached, and the run ends identical to an undisturbed run.
* A tool backend raising (a missing weight file): candidates are ``tool_error`` (not the
  program's ``program_error``), the session stops, and ``--resume`` with the backend fixed redoes them.

Nothing lost, nothing duplicated: every example appears exactly once to readers (``blocks()``,
``read_candidates``, ``verified.jsonl``) and the superseded blocks stay in the shards.

The healthy :class:`FakeOpenAIEndpoint` needs no LLM: it answers each prompt's question with the
library program of the same template (``programs/library/shapes_*``, real programs), its filler
words swapped for the question's — what a good program writer would do.
"""

from __future__ import annotations

import json
import re
import threading
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from vpd.cli import app
from vpd.datasets import read_examples
from vpd.programs.library import format_choices, load_library
from vpd.runs import RunStore, read_candidates
from vpd.synth import SynthConfig, run_synth
from vpd.synth_failures import InfrastructureFailureError

K = 2
N_SCENES = 4  # x 2 questions = 8 examples


def _fill(template: str, question: str) -> dict[str, str] | None:
    parts = re.split(r"(\{\w+\})", template)
    pattern = "".join(f"(?P<{p[1:-1]}>\\w+)" if p.startswith("{") else re.escape(p) for p in parts)
    m = re.fullmatch(pattern, question.strip())
    return m.groupdict() if m else None


def program_for(question: str, choices: tuple[str, ...] | None, template: str) -> str | None:
    """The library program of ``template`` with its filler words (and options) replaced by the question's."""
    for prog in load_library():
        if prog.template != template or prog.source != "shapes":
            continue
        lib, want = _fill(template, prog.question), _fill(template, question)
        if lib is None or want is None or len(set(lib.values())) != len(lib):
            continue
        mapping = {lib[k]: want[k] for k in lib}
        words = sorted(mapping, key=len, reverse=True)
        text = re.sub(r"(?<![A-Za-z])(" + "|".join(map(re.escape, words)) + r")", lambda m: mapping[m.group(1)],
                      prog.program)
        if prog.choices and choices:
            text = text.replace(format_choices(prog.choices), format_choices(choices))
        return text
    return None


class FakeOpenAIEndpoint:
    """A local OpenAI-compatible ``/v1/completions`` server for tests.

    ``healthy``: answers ``n`` choices, each the completion of the prompt's last question with
    :func:`program_for` (the body after ``image_patch = ImagePatch(image)``). ``outage``: every
    request fails — HTTP 500 and dropped connections in turn.
    """

    def __init__(self, mode: str, programs: dict[str, str]) -> None:
        self.mode, self.programs = mode, programs
        self.requests = 0
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a: Any) -> None:
                """No access log: the test counts requests itself."""

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", 0))) or b"{}")
                outer.requests += 1
                if outer.mode == "outage":
                    if outer.requests % 2:
                        self.close_connection = True  # dropped: no response at all
                        self.connection.shutdown(2)
                        return
                    return self._send(500, {"error": {"message": "upstream exploded", "type": "server_error"}})
                question = re.findall(r"# Question: (.*)\n", body["prompt"])[-1]
                program = outer.programs.get(question, "")
                body_text = program.split("image_patch = ImagePatch(image)\n", 1)[-1] if program else "pass\n"
                n = int(body.get("n") or 1)
                self._send(200, {"id": "cmpl-fake", "object": "text_completion", "model": body.get("model"),
                                 "choices": [{"index": i, "text": body_text, "finish_reason": "stop"}
                                             for i in range(n)],
                                 "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}})

            def _send(self, code: int, payload: dict) -> None:
                data = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    from vpd.benchmarks.shapes import make_dataset

    data = tmp_path_factory.mktemp("faults") / "data"
    make_dataset(data, n=N_SCENES, seed=3, per_image=2)
    examples, _ = read_examples(data)
    programs = {ex.question: program_for(ex.question, ex.choices, ex.metadata["template"]) for ex in examples}
    assert sum(p is not None for p in programs.values()) == len(programs)  # every template has a library program
    healthy = FakeOpenAIEndpoint("healthy", {q: p for q, p in programs.items() if p})
    yield data, healthy
    healthy.close()


def _cfg(data: Path, out: Path, url: str, **kw: Any) -> SynthConfig:
    return SynthConfig(data=str(data), out=str(out), llm=f"openai:vpd-test@{url}?max_retries=1&backoff_s=0.01",
                       k=K, fewshot="fixed", cache="memory", progress=False, workers=2, **kw)


@pytest.fixture(scope="module")
def baseline(world, tmp_path_factory):
    """An undisturbed run against the healthy server: what every faulty run must end up as."""
    data, healthy = world
    out = tmp_path_factory.mktemp("faults") / "baseline"
    rep = run_synth(_cfg(data, out, healthy.url)).report
    assert rep["examples"] == 2 * N_SCENES and rep["llm"]["llm_errors"] == 0
    return out, _outcome(out)


def _outcome(run: Path) -> dict[str, Any]:
    """What a run holds, as readers see it; asserts nothing is duplicated."""
    pairs = Counter((ex.id, c.index) for ex, c, _ in read_candidates(run))
    assert pairs and max(pairs.values()) == 1, "a candidate appears twice"
    verified = [json.loads(line)["example"]["id"] for line in (run / "verified.jsonl").read_text().splitlines()]
    assert len(verified) == len(set(verified)), "verified.jsonl holds an example twice"
    cats = {(ex.id, c.index): c.verdict.category for ex, c, _ in read_candidates(run)}
    answers = {(ex.id, c.index): c.answer for ex, c, _ in read_candidates(run)}
    return {"ids": sorted({e for e, _ in pairs}), "verified": sorted(verified), "categories": cats, "answers": answers}


def _shard_blocks(run: Path) -> Counter:
    """How many committed blocks each example has in the shards (history included)."""
    n: Counter = Counter()
    for shard in RunStore(run).shards():
        for line in shard.read_text().splitlines():
            rec = json.loads(line)
            n[rec["example_id"]] += rec["index"] == 0
    return n


def test_baseline_verifies_most_examples(baseline):
    _, base = baseline
    # the library programs are right for most shapes questions (the shapes tools err sometimes)
    assert len(base["verified"]) >= len(base["ids"]) // 2
    assert set(base["categories"].values()) <= {"none", "wrong_answer"}


def test_llm_outage_stops_then_resume_on_another_address_redoes_exactly_the_failed(world, baseline, tmp_path):
    data, healthy = world
    base_run, base = baseline
    down = FakeOpenAIEndpoint("outage", {})
    out = tmp_path / "run"
    runner = CliRunner()
    common = ["synth", "--data", str(data), "--out", str(out), "--k", str(K), "--fewshot", "fixed",
              "--cache", "memory", "--quiet", "--split", "all"]  # all: as the baseline's Python-API run
    try:
        res = runner.invoke(app, common + ["--llm", f"openai:vpd-test@{down.url}?max_retries=1&backoff_s=0.01",
                                           "--max-infra-failures", "4"])
    finally:
        down.close()
    assert res.exit_code == 3, res.output
    assert "--resume" in res.output and "LLM endpoint" in res.output
    first = _outcome(out)
    assert set(first["categories"].values()) == {"llm_error"}
    failed = first["ids"]
    assert len(failed) == 4 // K  # stopped at the 4th consecutive failed candidate: 2 examples committed
    report = json.loads((out / "report.json").read_text())
    assert report["retryable"] == len(failed) and "stopped" in report["stopped"]

    # the same model at a new address: accepted; the failed examples are redone, the rest done once
    res = runner.invoke(app, common + ["--resume", "--llm", f"openai:vpd-test@{healthy.url}?max_retries=1"])
    assert res.exit_code == 0, res.output
    after = _outcome(out)
    assert after["ids"] == base["ids"] and after["verified"] == base["verified"]
    assert after["categories"] == base["categories"] and after["answers"] == base["answers"]
    blocks = _shard_blocks(out)  # history: the failed attempt stays, superseded
    assert {e for e, n in blocks.items() if n == 2} == set(failed) and max(blocks.values()) == 2
    manifest = json.loads((out / "manifest.json").read_text())
    s1, s2 = manifest["sessions"]
    assert s1["stopped"] and s2["stopped"] is None
    assert s2["retried"] == len(failed) and s2["pending_at_start"] == len(base["ids"])
    assert down.url in s2["llm_changed_from"] and healthy.url in s2["llm"]
    assert s2["sampler"]["base_url"] == healthy.url
    # a third resume has nothing left to do
    res = runner.invoke(app, common + ["--resume", "--llm", f"openai:vpd-test@{healthy.url}"])
    assert res.exit_code == 0 and json.loads((out / "manifest.json").read_text())["sessions"][-1]["pending_at_start"] == 0
    # but another model is still refused
    res = runner.invoke(app, common + ["--resume", "--llm", f"openai:other-model@{healthy.url}"])
    assert res.exit_code == 2 and "different configuration" in res.output


class FakeMissingWeightsBackend:
    """Wraps a real backend; every call raises what a backend with a missing weight file raises."""

    def __init__(self, inner: Any) -> None:
        self._inner = inner

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)

    def _fail(self, *a: Any, **k: Any) -> Any:
        from vpd.tools.errors import MissingWeights

        raise MissingWeights(self._inner.name, "weights", "/nonexistent/shapes.pt")

    run = analyse = answer = run_batch = _fail


def test_tool_backend_failure_is_tool_error_and_retried_on_resume(world, baseline, tmp_path):
    from vpd.tools import load

    data, healthy = world
    _, base = baseline
    out = tmp_path / "run"
    broken = load("shapes")
    broken.backends = {tool: FakeMissingWeightsBackend(b) for tool, b in broken.backends.items()}
    with pytest.raises(InfrastructureFailureError, match="tool backend"):
        run_synth(_cfg(data, out, healthy.url, max_infra_failures=0), toolbox=broken)
    first = _outcome(out)
    assert first["ids"] == base["ids"]  # the session went through (no streak limit) but every candidate failed
    assert set(first["categories"].values()) == {"tool_error"}
    errors = [c.error for _, c, _ in read_candidates(out)]
    assert all(e.startswith("ToolBackendError: MissingWeights") for e in errors), errors[:2]
    calls = [call for _, c, _ in read_candidates(out) for call in c.trace.calls]
    assert calls and all(call.error.startswith("ToolBackendError: MissingWeights") for call in calls)
    assert json.loads((out / "report.json").read_text())["retryable"] == len(base["ids"])

    rep = run_synth(_cfg(data, out, healthy.url, resume=True)).report  # weights back in place
    after = _outcome(out)
    assert after["ids"] == base["ids"] and after["verified"] == base["verified"]
    assert after["categories"] == base["categories"]
    assert rep["retryable"] == 0 and rep["examples"] == len(base["ids"])
    assert set(_shard_blocks(out).values()) == {2}
    # --no-retry-failed leaves failed examples alone: nothing to do here, nothing rewritten
    run_synth(_cfg(data, out, healthy.url, resume=True, retry_failed=False))
    assert set(_shard_blocks(out).values()) == {2}


def test_a_program_bug_is_program_error_and_not_retried(world, tmp_path):
    """The other side of the line: a program that raises by itself is the program's fault."""
    data, _ = world
    examples, _ = read_examples(data)
    bad = FakeOpenAIEndpoint("healthy", {ex.question: "def execute_command(image):\n"
                                                      "    image_patch = ImagePatch(image)\n"
                                                      "    return image_patch.find('red cube')[99]\n"
                                         for ex in examples})
    out = tmp_path / "run"
    try:
        rep = run_synth(_cfg(data, out, bad.url, limit=2)).report
    finally:
        bad.close()
    assert rep["failure_categories"] == {"program_error": 2 * K} and rep["retryable"] == 0
    assert all("IndexError" in c.error for _, c, _ in read_candidates(out))
