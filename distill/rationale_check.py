"""Checking a rationale against its trace and label.

A rationale is kept only if

1. the answer it states (last sentence, ``"... the answer is X."``) passes the example's answer
   checker (``vpd.checkers.checker_for(example)``; for unlabelled examples it must equal the
   program's own output), and
2. every box it cites (four integers ``x0 y0 x1 y1``, pixels) is a box of the trace — a detection
   or a patch a tool ran on — and every other number it cites appears in the trace, the question
   or its choices (or is the number of detections of one call).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from vpd.distill.answer_text import answer_text
from vpd.distill.rationale import stated_answer
from vpd.types import Example, Trace

_BOX_RE = re.compile(r"(?<![\d.\-])(-?\d+)\s+(-?\d+)\s+(-?\d+)\s+(-?\d+)(?!\.?\d)")
_NUM_RE = re.compile(r"(?<![\w.])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?![\w])")


@dataclass(frozen=True, kw_only=True)
class TraceFacts:
    """What a rationale may cite: boxes (4-int tuples) and numbers (canonical strings)."""

    boxes: frozenset[tuple[int, int, int, int]]
    numbers: frozenset[str]


@dataclass(frozen=True, kw_only=True)
class RationaleCheck:
    """The result of checking one rationale. ``ok`` = ``answer_ok and cites_ok``."""

    ok: bool
    answer_ok: bool
    cites_ok: bool
    stated: str | None
    unknown_boxes: tuple[str, ...] = ()
    unknown_numbers: tuple[str, ...] = ()
    reason: str = ""


def canonical_number(text: str) -> str | None:
    """A canonical string for a number (``"2.0"`` -> ``"2"``, ``"0.50"`` -> ``"0.5"``); None if not one."""
    try:
        d = Decimal(text)
    except (InvalidOperation, ValueError):
        return None
    if not d.is_finite():
        return None
    if d == d.to_integral_value():
        return str(d.to_integral_value())
    return format(d.normalize(), "f")


def _numbers_in(text: str) -> set[str]:
    out = set()
    for m in _NUM_RE.finditer(text):
        c = canonical_number(m.group(0))
        if c is not None:
            out.add(c)
    return out


def _int_box(values: Any) -> tuple[int, int, int, int] | None:
    try:
        v = [int(round(float(x))) for x in list(values)[:4]]
    except (TypeError, ValueError, OverflowError):
        return None
    return (v[0], v[1], v[2], v[3]) if len(v) == 4 else None


def _output_boxes(value: Any, out: set[tuple[int, int, int, int]], depth: int = 0) -> None:
    if depth > 6:
        return
    if isinstance(value, dict):
        if "box" in value:
            b = _int_box(value["box"])
            if b:
                out.add(b)
        for v in value.values():
            _output_boxes(v, out, depth + 1)
    elif isinstance(value, (list, tuple)):
        if len(value) in (4, 6) and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value[:4]):
            b = _int_box(value)
            if b:
                out.add(b)
        for v in value:
            _output_boxes(v, out, depth + 1)


def trace_facts(example: Example, trace: Trace) -> TraceFacts:
    """Boxes and numbers of the trace (structured records and text), the question and its choices."""
    boxes: set[tuple[int, int, int, int]] = set()
    numbers: set[str] = set()
    for call in trace.calls:
        if call.box is not None:
            boxes.add(call.box.ints())
        for b in call.boxes:
            boxes.add(b.ints())
        if call.boxes or call.tool in ("detect", "nudity", "ocr"):
            numbers.add(str(len(call.boxes)))
        _output_boxes(call.result, boxes)
    _output_boxes(trace.output, boxes)
    texts = [trace.text(), example.question, *(example.choices or ()), answer_text(trace.output)]
    for t in texts:
        numbers |= _numbers_in(str(t))
    for b in boxes:
        numbers.update(str(v) for v in b)
    return TraceFacts(boxes=frozenset(boxes), numbers=frozenset(numbers))


def cited(rationale: str) -> tuple[list[tuple[int, int, int, int]], list[str]]:
    """Boxes (runs of four integers) and other numbers cited by ``rationale``."""
    boxes: list[tuple[int, int, int, int]] = []
    spans: list[tuple[int, int]] = []
    for m in _BOX_RE.finditer(rationale):
        boxes.append(tuple(int(g) for g in m.groups()))  # type: ignore[arg-type]
        spans.append(m.span())
    numbers = []
    for m in _NUM_RE.finditer(rationale):
        if any(s <= m.start() < e for s, e in spans):
            continue
        c = canonical_number(m.group(0))
        if c is not None:
            numbers.append(c)
    return boxes, numbers


def answer_passes(stated: str, example: Example, program_answer: Any) -> tuple[bool, str]:
    """Whether ``stated`` passes the example's answer checker (or equals the program's output
    when the example has no label). Returns ``(passed, detail)``."""
    if example.answer is None:
        ok = _norm(stated) == _norm(answer_text(program_answer))
        return ok, "" if ok else f"stated {stated!r} != program output {answer_text(program_answer)!r}"
    from vpd.checkers import checker_for

    checker = checker_for(example)
    verdict = checker.check(stated, example)
    ok = bool(verdict.passed)
    return ok, "" if ok else f"checker {verdict.checker or type(checker).__name__}: {verdict.category} {verdict.detail}".strip()


def _norm(text: str) -> str:
    return " ".join(str(text).lower().strip().rstrip(".").split())


def check_rationale(rationale: str, example: Example, trace: Trace, *, program_answer: Any = None,
                    facts: TraceFacts | None = None) -> RationaleCheck:
    """Check one rationale (see the module docstring)."""
    facts = facts or trace_facts(example, trace)
    stated = stated_answer(rationale)
    reasons: list[str] = []
    if stated is None:
        answer_ok = False
        reasons.append("no stated answer")
    else:
        try:
            answer_ok, detail = answer_passes(stated, example, trace.output if program_answer is None else program_answer)
        except ImportError:
            raise
        except Exception as exc:  # a checker crash on odd text is a failed check, not a crash
            answer_ok, detail = False, f"checker error: {type(exc).__name__}: {exc}"
        if not answer_ok:
            reasons.append(detail or "wrong answer")
    boxes, numbers = cited(rationale)
    unknown_boxes = tuple(" ".join(map(str, b)) for b in boxes if b not in facts.boxes)
    unknown_numbers = tuple(n for n in numbers if n not in facts.numbers)
    cites_ok = not unknown_boxes and not unknown_numbers
    if unknown_boxes:
        reasons.append("boxes not in trace: " + "; ".join(unknown_boxes[:5]))
    if unknown_numbers:
        reasons.append("numbers not in trace: " + ", ".join(unknown_numbers[:5]))
    return RationaleCheck(ok=answer_ok and cites_ok, answer_ok=answer_ok, cites_ok=cites_ok, stated=stated,
                          unknown_boxes=unknown_boxes, unknown_numbers=unknown_numbers,
                          reason="; ".join(reasons))
