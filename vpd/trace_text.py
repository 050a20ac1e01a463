"""VPD's text form of a trace.

    Calling find function. Detect car
    Detection result: 669 103 779 286 car, 669 468 769 664 car
    Calling simple_query function. Question: What color is the car?
    Answer: red
    Program output: 2
"""

from __future__ import annotations

import json
from typing import Any

from vpd.types import ToolCall, Trace

#: tool -> (ImagePatch-level function name shown in the trace, argument formatter)
_CALL_LINES = {
    "detect": ("find", lambda a: f"Detect {a.get('query', '')}"),
    "count": ("count", lambda a: f"Count {a.get('query', '')}"),
    "vqa": ("simple_query", lambda a: f"Question: {a.get('question', '')}"),
    "caption": ("caption", lambda a: "Describe the image"),
    "verify_property": ("verify_property", lambda a: f"Verify {a.get('name', '')} is {a.get('prop', '')}"),
    "best_text_match": ("best_text_match", lambda a: "Options: " + ", ".join(map(str, a.get("options", [])))),
    "depth": ("compute_depth", lambda a: "Estimate depth"),
    "llm_query": ("llm_query", lambda a: f"Question: {a.get('question', '')}"),
    "ocr": ("ocr", lambda a: "Read text"),
    "nudity": ("detect_nudity", lambda a: "Detect nudity"),
}


def call_to_text(call: ToolCall) -> list[str]:
    fn, fmt = _CALL_LINES.get(call.tool, (call.tool, lambda a: json.dumps(a)))
    lines = [f"Calling {fn} function. {fmt(call.args)}"]
    if call.error:
        lines.append(f"Error: {call.error}")
    elif call.tool in ("detect", "nudity"):
        if call.boxes:
            lines.append("Detection result: " + ", ".join(f"{b.text()} {b.label}".strip() for b in call.boxes))
        else:
            lines.append("Detection result: none")
    elif call.tool == "ocr":
        lines.append("Text: " + (" ".join(b.label for b in call.boxes) or "none"))
    else:
        lines.append(f"Answer: {_fmt(call.result)}")
    return lines


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict) and "box" in value:
        return " ".join(str(int(v)) for v in value["box"])
    if isinstance(value, list):
        return ", ".join(_fmt(v) for v in value)
    return str(value)


def trace_to_text(trace: Trace) -> str:
    lines: list[str] = []
    for call in trace.calls:
        lines.extend(call_to_text(call))
    lines.append(f"Program output: {_fmt(trace.output)}")
    return "\n".join(lines)
