"""Core records shared by every stage.

All records are frozen, keyword-only dataclasses with a JSON round-trip
(``to_dict`` / ``from_dict``). Conventions:

* Boxes are ``x0, y0, x1, y1`` in **pixels** of the full image, origin top-left,
  y growing downwards, ``x0 <= x1`` and ``y0 <= y1`` (half-open is not assumed;
  width is ``x1 - x0``).
* Times are in milliseconds (``*_ms``) or seconds (``*_s``) as the name says.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal, Self

JSON = Any  # plain JSON data: None, bool, int, float, str, list, dict[str, ...]


class _Record:
    """Mixin: JSON round-trip for frozen dataclasses with nested records."""

    _nested: dict[str, type] = {}
    _nested_lists: dict[str, type] = {}

    def to_dict(self) -> dict[str, JSON]:
        out: dict[str, JSON] = {}
        for f in dataclasses.fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            out[f.name] = _plain(value)
        return out

    @classmethod
    def from_dict(cls, data: dict[str, JSON]) -> Self:
        types = {f.name: str(f.type) for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        kwargs: dict[str, Any] = {}
        for key, value in data.items():
            if key not in types:
                continue  # forward compatible: ignore unknown keys
            if key in cls._nested and value is not None:
                value = cls._nested[key].from_dict(value)
            elif key in cls._nested_lists and value is not None:
                value = tuple(cls._nested_lists[key].from_dict(v) for v in value)
            elif isinstance(value, list) and types[key].startswith("tuple"):
                value = tuple(value)  # tuple-typed fields only; JSON fields keep their lists
            kwargs[key] = value
        return cls(**kwargs)

    def to_json(self) -> str:
        """Strict JSON; ValueError naming the record when it holds NaN or ±Infinity."""
        try:
            return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True, allow_nan=False)
        except ValueError as exc:
            raise ValueError(f"{type(self).__name__} holds a NaN/Infinity number, which JSON has no "
                             f"representation for ({exc})") from None

    @classmethod
    def from_json(cls, text: str) -> Self:
        return cls.from_dict(json.loads(text))


def _plain(value: Any) -> JSON:
    if isinstance(value, _Record):
        return value.to_dict()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, kw_only=True)
class Box(_Record):
    """An axis-aligned box in pixels, origin top-left, y down: ``x0 <= x1``, ``y0 <= y1``."""

    x0: float
    y0: float
    x1: float
    y1: float
    score: float = 1.0
    label: str = ""

    @property
    def width(self) -> float:
        return self.x1 - self.x0

    @property
    def height(self) -> float:
        return self.y1 - self.y0

    @property
    def area(self) -> float:
        return max(0.0, self.width) * max(0.0, self.height)

    def iou(self, other: "Box") -> float:
        ix0, iy0 = max(self.x0, other.x0), max(self.y0, other.y0)
        ix1, iy1 = min(self.x1, other.x1), min(self.y1, other.y1)
        inter = max(0.0, ix1 - ix0) * max(0.0, iy1 - iy0)
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0

    def ints(self) -> tuple[int, int, int, int]:
        """The box rounded to integer pixels (VPD writes boxes as four integers)."""
        return (round(self.x0), round(self.y0), round(self.x1), round(self.y1))

    def text(self) -> str:
        """VPD's text form: ``"669 103 779 286"``."""
        return " ".join(str(v) for v in self.ints())


@dataclass(frozen=True, kw_only=True)
class Example(_Record):
    """One labelled (image, question, answer) item.

    ``image`` is a path (relative paths are resolved against the dataset folder by the loader).
    ``answer`` is None for unlabelled data. ``choices`` is None unless multiple choice.
    """

    id: str
    image: str
    question: str
    answer: str | None = None
    choices: tuple[str, ...] | None = None
    qtype: str = ""
    metadata: dict[str, JSON] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class ToolCall(_Record):
    """One tool call as the host saw it.

    ``args`` are the normalised arguments (JSON). ``box`` is the patch the tool ran on, pixels of
    the full image. ``result`` is the plain JSON result; ``boxes`` the detections it returned.
    ``error`` is set when the tool raised. ``cached`` is True if served by the tool cache.
    """

    tool: str
    args: dict[str, JSON] = field(default_factory=dict)
    box: Box | None = None
    result: JSON = None
    boxes: tuple[Box, ...] = ()
    error: str | None = None
    ms: float = 0.0
    backend: str = ""
    cached: bool = False

    _nested = {"box": Box}
    _nested_lists = {"boxes": Box}


@dataclass(frozen=True, kw_only=True)
class Trace(_Record):
    """All tool calls of one program execution, in order, plus its output."""

    calls: tuple[ToolCall, ...] = ()
    output: JSON = None

    _nested_lists = {"calls": ToolCall}

    def text(self) -> str:
        """VPD's text form of the trace (see :mod:`vpd.trace_text`)."""
        from vpd.trace_text import trace_to_text

        return trace_to_text(self)


Status = Literal["ok", "error", "timeout", "rejected", "killed"]
FailureCategory = Literal[
    "none", "no_code", "syntax", "rejected", "runtime_error", "timeout", "killed", "wrong_answer"
]


@dataclass(frozen=True, kw_only=True)
class Verdict(_Record):
    """The answer check of one candidate against the label.

    ``strict`` is exact match after the checker's normalisation; ``lenient`` allows the checker's
    looser rules (e.g. option text for a letter, number words). ``category`` explains a failure.
    """

    strict: bool
    lenient: bool
    checker: str = ""
    category: str = "none"
    detail: str = ""

    @property
    def passed(self) -> bool:
        return self.lenient


@dataclass(frozen=True, kw_only=True)
class Candidate(_Record):
    """One sampled program for one example, its execution and its verdict."""

    example_id: str
    index: int
    program: str | None
    raw_completion: str = ""
    status: str = "ok"
    answer: JSON = None
    error: str | None = None
    stdout: str = ""
    trace: Trace = field(default_factory=Trace)
    verdict: Verdict | None = None
    timings: dict[str, float] = field(default_factory=dict)
    mean_logprob: float | None = None  # the LLM's score of the program (mean token log-probability)

    _nested = {"trace": Trace, "verdict": Verdict}
