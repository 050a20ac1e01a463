"""Trace -> rationale: template sentences, checks, fallbacks, on real shapes runs and bad input."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from distill_fixtures import make_shapes_run  # noqa: E402

from vpd.checkers import checker_for  # noqa: E402
from vpd.distill.rationale import (REWRITERS, TOOL_SENTENCES, LLMRewriter, TraceItem, call_sentence,  # noqa: E402
                                   stated_answer, template_rationale)
from vpd.distill.rationale_check import check_rationale  # noqa: E402
from vpd.distill.rationalize import rationalize_run  # noqa: E402
from vpd.programs.sampler_base import Completion  # noqa: E402
from vpd.tools.specs import TOOLS  # noqa: E402
from vpd.types import Box, Example, ToolCall, Trace  # noqa: E402

BOX_RE = re.compile(r"(?<![\d.])(\d+) (\d+) (\d+) (\d+)(?!\.?\d)")


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    return make_shapes_run(tmp_path_factory.mktemp("rat"), n=16, seed=11)


def test_every_registered_tool_has_a_sentence_form():
    for name in TOOLS:
        assert name in TOOL_SENTENCES, f"tool {name!r} has no sentence form"
        call = ToolCall(tool=name, args={"query": "red cube", "question": "What color?", "name": "cube",
                                         "prop": "red", "options": ["a", "b"]},
                        box=Box(x0=0, y0=0, x1=10, y1=10), result="x", boxes=(Box(x0=1, y0=2, x1=3, y1=4, label="t"),))
        s = call_sentence(call)
        assert s and s.endswith(".") and "{" not in s


def test_registries_have_every_rewriter():
    assert REWRITERS.names() == ["llm", "template", "words"]


def test_template_writes_boxes_as_four_integers_and_states_answer():
    ex = Example(id="1", image="/nonexistent.png", question="How many cars have the brake lights on?", answer="2")
    trace = Trace(calls=(ToolCall(tool="detect", args={"query": "car"}, box=Box(x0=0, y0=0, x1=1000, y1=800),
                                  boxes=(Box(x0=669.4, y0=103, x1=779, y1=286.2, label="car"),
                                         Box(x0=669, y0=468, x1=769, y1=664, label="car"))),), output=2)
    text = template_rationale(TraceItem(example=ex, program="", trace=trace, answer=2))
    assert "669 103 779 286 and 669 468 769 664" in text
    assert text.endswith("Thus, the answer is 2.")
    assert stated_answer(text) == "2"


def test_real_run_every_verified_example_gets_a_kept_rationale(shapes_run):
    data, run, counts = shapes_run
    assert counts["passed"] >= 20  # real programs on the real backend mostly pass
    rep = rationalize_run(run, show_progress=False)
    lines = [json.loads(l) for l in (run / "rationales.jsonl").read_text().splitlines()]
    verified = (run / "verified.jsonl").read_text().splitlines()
    assert rep.verified == len(verified) == len(lines) == counts["passed"]
    kept = [l for l in lines if l["kept"]]
    assert len(kept) == len(lines)  # a rationale for every verified example
    vmap = {json.loads(v)["example"]["id"]: json.loads(v) for v in verified}
    for rec in kept:
        ex = Example.from_dict(rec["example"])
        # independent re-check: the stated answer passes the real checker ...
        assert checker_for(ex).check(stated_answer(rec["rationale"]), ex).passed, rec["rationale"]
        # ... and every cited box is a box the host recorded in the trace
        trace = Trace.from_dict(vmap[ex.id]["candidate"]["trace"])
        trace_boxes = {b.ints() for c in trace.calls for b in c.boxes} | {c.box.ints() for c in trace.calls if c.box}
        for m in BOX_RE.finditer(rec["rationale"]):
            assert tuple(int(g) for g in m.groups()) in trace_boxes
    report = json.loads((run / "report.json").read_text())
    assert report["rationalize"]["kept"] == len(kept)


def test_check_rejects_hallucinated_box_wrong_answer_and_unknown_number():
    ex = Example(id="1", image="/x.png", question="How many red cubes are there?", answer="1", qtype="count_simple")
    trace = Trace(calls=(ToolCall(tool="detect", args={"query": "red cube"},
                                  boxes=(Box(x0=10, y0=20, x1=30, y1=40),)),), output=1)
    good = check_rationale("There is one red cube, at 10 20 30 40. Thus, the answer is 1.", ex, trace)
    assert good.ok
    bad_box = check_rationale("There is one red cube, at 11 20 30 40. Thus, the answer is 1.", ex, trace)
    assert not bad_box.ok and bad_box.unknown_boxes == ("11 20 30 40",)
    wrong = check_rationale("There is one red cube, at 10 20 30 40. Thus, the answer is 3.", ex, trace)
    assert not wrong.answer_ok
    number = check_rationale("It is 57 pixels wide. Thus, the answer is 1.", ex, trace)
    assert not number.cites_ok and "57" in number.unknown_numbers
    none = check_rationale("I do not know.", ex, trace)
    assert not none.ok and none.stated is None


def test_bad_traces_failed_calls_empty_detections_unicode_huge_numbers():
    huge = 10 ** 40
    ex = Example(id="ü", image="/nope.png", question="Wie viele Würfel gibt es? 🚗", answer=str(huge), qtype="")
    trace = Trace(calls=(
        ToolCall(tool="detect", args={"query": "Würfel 🚗"}, error="ToolError: backend exploded"),
        ToolCall(tool="detect", args={"query": "grüner Würfel"}, boxes=()),
        ToolCall(tool="vqa", args={"question": "Farbe?"}, result="grün"),
        ToolCall(tool="mystery_tool", args={}, result={"k": 1}),
        ToolCall(tool="depth", args={}, box=Box(x0=0, y0=0, x1=5, y1=5), result=1e300),
    ), output=huge)
    item = TraceItem(example=ex, program="", trace=trace, answer=huge)
    text = template_rationale(item)
    assert "failed, so it gives no evidence" in text
    assert "There is no grüner Würfel." in text
    assert text.endswith(f"Thus, the answer is {huge}.")
    chk = check_rationale(text, ex, trace, program_answer=huge)
    assert chk.ok, chk.reason


class FakeSampler:
    """Returns canned completions per prompt (a unit-test stand-in for an LLM)."""

    def __init__(self, texts):
        self.texts = list(texts)
        self.calls = 0

    def generate(self, prompts, *, n=1, temperature=0.0, max_tokens=256, stop=None, seed=None):
        out = []
        for p in prompts:
            assert p.rstrip().endswith("Rationale:")
            t = self.texts[self.calls % len(self.texts)]
            self.calls += 1
            out.append([Completion(text="", error=t[1:]) if t.startswith("!") else Completion(text=t, completion_tokens=5)])
        return out


def test_llm_rewriter_outputs_are_checked_and_fall_back_to_template(tmp_path):
    ex = Example(id="1", image=str(tmp_path / "none.png"), question="How many red cubes are there?", answer="1",
                 qtype="count_simple")
    trace = Trace(calls=(ToolCall(tool="detect", args={"query": "red cube"}, boxes=(Box(x0=10, y0=20, x1=30, y1=40),)),),
                  output=1)
    run = tmp_path / "run"
    run.mkdir()
    rec = {"example": ex.to_dict(), "candidate": {"example_id": "1", "index": 0, "program": "def execute_command(image): ...",
                                                  "trace": trace.to_dict(), "answer": 1}}
    (run / "verified.jsonl").write_text("\n".join(json.dumps({**rec, "example": {**ex.to_dict(), "id": str(i)}})
                                                  for i in range(4)) + "\n{broken json\n")
    sampler = FakeSampler([
        "The red cube is at 10 20 30 40, the only one. Thus, the answer is 1.\n\nQuestion: next",  # good
        "The red cube is at 99 20 30 40. Thus, the answer is 1.",  # hallucinated box
        "!server said 503",  # sampler error
        "Thus, the answer is 4.",  # wrong answer
    ])
    rep = rationalize_run(run, rewriter="llm", sampler=sampler, show_progress=False)
    lines = [json.loads(l) for l in (run / "rationales.jsonl").read_text().splitlines()]
    assert rep.bad_lines == 1 and rep.verified == 4
    assert rep.rewriter_ok == 1 and rep.fallbacks == 3 and rep.kept == 4
    assert [l["fallback"] for l in lines] == [False, True, True, True]
    assert lines[0]["rationale"] == "The red cube is at 10 20 30 40, the only one. Thus, the answer is 1."
    assert lines[0]["rewriter"] == "llm" and lines[1]["rewriter"] == "template"


def test_llm_rewriter_survives_a_crashing_sampler():
    class FakeCrashingSampler:
        def generate(self, prompts, **kw):
            raise ConnectionError("refused")

    ex = Example(id="1", image="/x.png", question="q?", answer="yes")
    out = LLMRewriter(sampler=FakeCrashingSampler()).rewrite([TraceItem(example=ex, program="", trace=Trace(output="yes"))])
    assert out[0].text is None and "refused" in out[0].error


@pytest.mark.slow
def test_real_llm_rewriter_on_real_run(shapes_run):
    """The real offline LLM (packaged Gemma 3 270M) rewrites real traces; whatever it writes, every
    kept rationale passes the checks (bad ones fall back and are counted)."""
    data, run, counts = shapes_run
    rep = rationalize_run(run, rewriter="llm", llm="gemma", show_progress=False)
    lines = [json.loads(l) for l in (run / "rationales.jsonl").read_text().splitlines()]
    assert rep.completion_tokens > 0  # the model really generated text
    assert rep.rewriter_ok + rep.fallbacks == rep.verified == len(lines)
    assert all(l["kept"] for l in lines)
    for l in lines:
        ex = Example.from_dict(l["example"])
        assert checker_for(ex).check(stated_answer(l["rationale"]), ex).passed
