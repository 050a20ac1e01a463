"""Robust parsing of LLM output into (question, answer, rationale) triples.

Accepted shapes, mixed freely: ``Q:/A:/R:`` lines; ``Question:/Answer:/Rationale:`` (also
``Reason:``, ``Explanation:``, ``Because``), with optional numbering (``1.``, ``2)``), bullets and
markdown bold; one JSON object per line or a JSON list with ``question/answer/rationale`` keys.
Anything else is skipped; each incomplete triple is recorded as an error, never raised.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

_KEY_RE = re.compile(
    r"^\s*(?:[-*•]+\s*)?(?:\(?\d{1,3}[.)]\s*)?(?:\*\*|__)?\s*"
    r"(question|q|answer|a|rationale|reason|explanation|r|because)\s*(?:\d{1,3})?\s*(?:\*\*|__)?\s*[:.)\-]\s*(?:\*\*|__)?\s*(.*)$",
    re.IGNORECASE,
)
_BECAUSE_RE = re.compile(r"^\s*because\b[,:]?\s*(.*)$", re.IGNORECASE)
_FIELD = {"question": "question", "q": "question", "answer": "answer", "a": "answer",
          "rationale": "rationale", "reason": "rationale", "explanation": "rationale", "r": "rationale",
          "because": "rationale"}


@dataclass(frozen=True, kw_only=True)
class RawTriple:
    """A parsed triple; region references are still in the text as ``[k]``."""

    question: str
    answer: str
    rationale: str


@dataclass(frozen=True, kw_only=True)
class Parsed:
    triples: tuple[RawTriple, ...]
    errors: tuple[str, ...] = field(default_factory=tuple)


def _clean(text: str) -> str:
    text = text.replace("**", "").replace("__", "")
    return " ".join(text.split()).strip().strip('"').strip()


def _from_json(text: str) -> tuple[list[RawTriple], list[str]] | None:
    stripped = text.strip()
    if stripped.startswith("```"):
        stripped = stripped.strip("`")
        stripped = stripped[stripped.find("\n") + 1:] if "\n" in stripped else stripped
    objs: list[object] = []
    try:
        data = json.loads(stripped)
        objs = data if isinstance(data, list) else [data]
    except (json.JSONDecodeError, ValueError):
        lines = [ln.strip().rstrip(",") for ln in stripped.splitlines() if ln.strip().startswith("{")]
        for ln in lines:
            try:
                objs.append(json.loads(ln))
            except (json.JSONDecodeError, ValueError):
                continue
    if not objs:
        return None
    triples, errors = [], []
    for i, o in enumerate(objs):
        if not isinstance(o, dict):
            errors.append(f"json item {i}: not an object")
            continue
        low = {str(k).lower(): v for k, v in o.items()}
        q = _clean(str(low.get("question", low.get("q", "")) or ""))
        a = _clean(str(low.get("answer", low.get("a", "")) or ""))
        r = _clean(str(low.get("rationale", low.get("reason", low.get("r", ""))) or ""))
        if q and a and r:
            triples.append(RawTriple(question=q, answer=a, rationale=r))
        else:
            errors.append(f"json item {i}: missing " + ", ".join(n for n, v in (("question", q), ("answer", a), ("rationale", r)) if not v))
    return triples, errors


def parse_triples(text: str, *, max_len: int = 600) -> Parsed:
    """Parse ``text`` into triples (see the module docstring). Fields longer than ``max_len``
    characters are rejected (a model that rambles)."""
    if not isinstance(text, str) or not text.strip():
        return Parsed(triples=(), errors=("empty output",))
    js = _from_json(text) if ("{" in text and '"' in text) else None
    if js is not None and js[0]:
        return Parsed(triples=tuple(js[0]), errors=tuple(js[1]))
    triples: list[RawTriple] = []
    errors: list[str] = []
    cur: dict[str, str] = {}
    last: str | None = None

    def flush() -> None:
        nonlocal cur
        if not cur:
            return
        q, a, r = (_clean(cur.get(k, "")) for k in ("question", "answer", "rationale"))
        missing = [n for n, v in (("question", q), ("answer", a), ("rationale", r)) if not v]
        too_long = [n for n, v in (("question", q), ("answer", a), ("rationale", r)) if len(v) > max_len]
        if missing:
            errors.append(f"triple {len(triples) + len(errors) + 1}: missing {', '.join(missing)}")
        elif too_long:
            errors.append(f"triple {len(triples) + len(errors) + 1}: {', '.join(too_long)} longer than {max_len} chars")
        else:
            triples.append(RawTriple(question=q, answer=a, rationale=r))
        cur = {}

    for line in text.splitlines():
        if not line.strip():
            continue
        m = _KEY_RE.match(line)
        if m:
            key, value = _FIELD[m.group(1).lower()], m.group(2)
        else:
            b = _BECAUSE_RE.match(line)
            if b and last == "answer":
                key, value = "rationale", b.group(1)
            elif last is not None:  # continuation of the previous field
                cur[last] = cur.get(last, "") + " " + line.strip()
                continue
            else:
                continue
        if key == "question" and cur:
            flush()
        elif key in cur and cur[key].strip():
            flush()  # a repeated field starts a new triple
        cur[key] = value
        last = key
    flush()
    if not triples and not errors:
        errors.append("no triples found")
    return Parsed(triples=tuple(triples), errors=tuple(errors))
