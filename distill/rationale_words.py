"""Rationales in words (rewriter ``words``): the template rationale with no pixel coordinates.

The ``template`` rewriter cites every box as four integers, VPD's form. A small student
pretrained on the ``find`` task (:mod:`vpd.distill.pretrain_tasks`) never emits such numbers; what
it can say is which objects a phrase selects, in words. This rewriter writes the same trace in that
vocabulary:

* a detection call becomes the ``find`` task's own text: ``"Find red object: a large red cube and a
  small red sphere."`` (``"none"`` when nothing was found). Objects are named by the label the
  detector gave each box (the ``shapes`` detector reads size, colour and shape from the pixels),
  else by the query, and listed left to right by box centre, as in pretraining;
* a tool that ran on a patch names the patch by the object found there: ``"For the large red cube,
  asked "What color is it?", the answer is red."``; a patch no detection named is ``a region``;
* counts, yes/no results and answers are written as in the template, and the last sentence states
  the answer (``"Thus, the answer is 2."``).

Every fact comes from the trace (names from detections, never from scene records), so
:func:`vpd.distill.rationale_check.check_rationale` checks these rationales like any other.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from vpd.distill.answer_text import answer_text
from vpd.distill.rationale import (REWRITERS, Rewrite, TraceItem, _best_text, _count, _llm, _ocr,
                                   _prefixed, _verify, _vqa, call_sentence, compose_rationale, full_image_box)
from vpd.types import Box, ToolCall, Trace
from vpd.wording import join_and

BoxKey = tuple[int, int, int, int]


def _words(text: Any) -> str:
    return " ".join(str(text).split())


def _article(noun: str) -> str:
    return f"an {noun}" if noun[:1].lower() in "aeiou" else f"a {noun}"


def _centre(box: Box) -> tuple[float, float]:
    return (box.x0 + box.x1) / 2, (box.y0 + box.y1) / 2


def _name_of(box: Box, query: str) -> str:
    return _words(box.label) or query or "object"


def object_names(trace: Trace) -> dict[BoxKey, str]:
    """Box (integer pixels) -> the name its first detection gave it (``"large red cube"``)."""
    names: dict[BoxKey, str] = {}
    for call in trace.calls:
        if call.error:
            continue
        query = _words(call.args.get("query", ""))
        for b in call.boxes:
            names.setdefault(b.ints(), _name_of(b, query))
    return names


def listing(call: ToolCall) -> str:
    """The detections of one call as the ``find`` task writes them, left to right; ``"none"``."""
    query = _words(call.args.get("query", ""))
    found = sorted(call.boxes, key=_centre)
    return join_and([_article(_name_of(b, query)) for b in found]) if found else "none"


class _Namer:
    """Names the patch a call ran on: ``""`` for the whole image, ``"the large red cube"``, ``"a region"``."""

    def __init__(self, trace: Trace, full: Box | None) -> None:
        self.names = object_names(trace)
        self.full = full.ints() if full is not None else None

    def __call__(self, call: ToolCall) -> str:
        if call.box is None or call.box.ints() == self.full:
            return ""
        name = self.names.get(call.box.ints())
        return f"the {name}" if name else "a region"


def _find(call: ToolCall, where: str) -> str:
    q = _words(call.args.get("query", "object")) or "object"
    return _prefixed(where, f"Find {q}: {listing(call)}.")


def _crop(call: ToolCall, where: str) -> str:
    return f"Zooming in on {where[len('for '):]}." if where else "Zooming in on the image."


def _caption(call: ToolCall, where: str) -> str:
    text = answer_text(call.result).rstrip(".")
    target = where[len("for "):] if where else "the image"
    return f"{target[0].upper()}{target[1:]} shows {text}."


def _depth(call: ToolCall, where: str) -> str:
    target = where[len("for "):] if where else "the image"
    return f"{target[0].upper()}{target[1:]} has a relative depth of {answer_text(call.result)}."


def _nudity(call: ToolCall, where: str) -> str:
    found = [_article(_words(b.label) or "region") for b in sorted(call.boxes, key=_centre)]
    return _prefixed(where, f"The nudity detector finds {join_and(found)}." if found
                     else "The nudity detector finds nothing.")


#: tool name -> sentence form ``(call, where) -> str``; ``where`` is ``""`` or ``"for the <name>"``.
WORD_SENTENCES: dict[str, Callable[[ToolCall, str], str]] = {
    "detect": _find, "count": _count, "crop": _crop, "vqa": _vqa, "caption": _caption,
    "verify_property": _verify, "best_text_match": _best_text, "depth": _depth,
    "llm_query": _llm, "ocr": _ocr, "nudity": _nudity,
}


def words_rationale(item: TraceItem, *, max_calls: int = 40) -> str:
    """The rationale for one trace in words (at most ``max_calls`` tool-call sentences)."""
    namer = _Namer(item.trace, full_image_box(item.example, item.trace))

    def sentence(call: ToolCall) -> str:
        fn = WORD_SENTENCES.get(call.tool)
        if call.error or fn is None:
            return call_sentence(call)  # failures and unknown tools: the template's box-free sentence
        patch = namer(call)
        return fn(call, f"for {patch}" if patch else "")

    return compose_rationale(item, sentence, max_calls=max_calls)


class WordsRewriter:
    """Deterministic trace -> rationale in words (see :func:`words_rationale`)."""

    name = "words"

    def __init__(self, *, max_calls: int = 40) -> None:
        self.max_calls = max_calls

    def rewrite(self, items: Sequence[TraceItem]) -> list[Rewrite]:
        return [Rewrite(text=words_rationale(it, max_calls=self.max_calls)) for it in items]


REWRITERS.add("words", WordsRewriter)

__all__ = ["WORD_SENTENCES", "WordsRewriter", "listing", "object_names", "words_rationale"]
