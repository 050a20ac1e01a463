"""Core records: geometry of Box and the JSON round-trip of every record."""

from __future__ import annotations

import json

import pytest

from vpd.types import Box, Candidate, Example, ToolCall, Trace, Verdict


def test_box_geometry():
    b = Box(x0=10, y0=20, x1=30, y1=60, score=0.5, label="red cube")
    assert (b.width, b.height, b.area) == (20, 40, 800)
    assert b.iou(b) == 1.0
    assert b.iou(Box(x0=30, y0=20, x1=50, y1=60)) == 0.0  # touching, no overlap
    assert b.iou(Box(x0=20, y0=20, x1=40, y1=60)) == pytest.approx(400 / 1200)
    assert Box(x0=0, y0=0, x1=0, y1=0).iou(Box(x0=0, y0=0, x1=0, y1=0)) == 0.0
    assert Box(x0=5, y0=5, x1=1, y1=1).area == 0.0  # inverted boxes have no area
    assert Box(x0=1.4, y0=2.6, x1=3.5, y1=4.49).ints() == (1, 3, 4, 4)
    assert b.text() == "10 20 30 60"


def test_records_are_frozen_and_keyword_only():
    b = Box(x0=0, y0=0, x1=1, y1=1)
    with pytest.raises(AttributeError):
        b.x0 = 5  # type: ignore[misc]
    with pytest.raises(TypeError):
        Box(0, 0, 1, 1)  # type: ignore[misc]


def _candidate() -> Candidate:
    call = ToolCall(tool="detect", args={"query": "cube"}, box=Box(x0=0, y0=0, x1=320, y1=240),
                    result=[[1.0, 2.0, 3.0, 4.0, 0.9, "cube"]], boxes=(Box(x0=1, y0=2, x1=3, y1=4, score=0.9, label="cube"),),
                    ms=1.5, backend="shapes")
    return Candidate(example_id="e1", index=0, program="def execute_command(image): ...", status="ok",
                     answer="1", trace=Trace(calls=(call,), output="1"),
                     verdict=Verdict(strict=True, lenient=True, checker="count"), timings={"run_s": 0.1})


@pytest.mark.parametrize("record", [
    Box(x0=1, y0=2, x1=3, y1=4, score=0.25, label="x"),
    Example(id="a", image="images/a.png", question="How many?", answer="2", choices=("A", "B"),
            qtype="count_simple", metadata={"scene": [{"shape": "cube", "bbox": [1, 2, 3, 4]}]}),
    Example(id="b", image="b.png", question="q"),
    ToolCall(tool="vqa", args={"question": "What color?"}, result="red", error=None),
    Verdict(strict=False, lenient=True, checker="vqa", category="wrong_answer", detail="x"),
    _candidate(),
])
def test_json_round_trip(record):
    cls = type(record)
    again = cls.from_json(record.to_json())
    assert again == record
    assert cls.from_dict(json.loads(json.dumps(record.to_dict()))) == record


def test_nested_records_are_rebuilt_and_unknown_keys_ignored():
    c = _candidate()
    d = c.to_dict()
    d["future_field"] = 1
    again = Candidate.from_dict(d)
    assert isinstance(again.trace, Trace) and isinstance(again.trace.calls[0], ToolCall)
    assert isinstance(again.trace.calls[0].box, Box) and isinstance(again.verdict, Verdict)
    assert again.verdict.passed


def test_trace_text_is_vpd_form():
    text = _candidate().trace.text()
    assert text.splitlines() == ["Calling find function. Detect cube",
                                 "Detection result: 1 2 3 4 cube",
                                 "Program output: 1"]
    err = Trace(calls=(ToolCall(tool="vqa", args={"question": "Why?"}, error="UnsupportedQuery: no"),),
                output=None)
    assert "Error: UnsupportedQuery: no" in err.text()
