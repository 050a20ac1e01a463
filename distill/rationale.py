"""Trace -> rationale rewriters (VPD step 4): a verified program's execution trace, in words.

Three rewriters, registered in :data:`REWRITERS`:

* ``template`` — deterministic. Every registered tool (:data:`vpd.tools.specs.TOOLS`) has a
  sentence form (:data:`TOOL_SENTENCES`); boxes are written as four integers like VPD
  (``"There are 2 cars, at 669 103 779 286 and 669 468 769 664."``); failed tool calls say so
  without inventing a result; the last sentence states the answer (``"Thus, the answer is 2."``).
* ``words`` — the template without pixel coordinates: objects named in words, in the form of
  the ``find`` pretraining task (:mod:`vpd.distill.rationale_words`);
* ``llm`` — a few-shot prompt (question, program, trace text -> rationale) sent through any
  :mod:`vpd.programs.samplers` sampler; its output is checked by :mod:`vpd.distill.rationale_check`
  and falls back to the template when the check fails.

Boxes are ``x0 y0 x1 y1`` in pixels of the full image, origin top-left.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Callable, Protocol, Sequence

from vpd.distill.answer_text import answer_text, box_text
from vpd.registry import Registry
from vpd.types import Box, Example, ToolCall, Trace
from vpd.wording import join_and

REWRITER_VERSION = "1"


@dataclass(frozen=True, kw_only=True)
class TraceItem:
    """One verified execution to explain: the example, its program, the host's trace, the answer."""

    example: Example
    program: str
    trace: Trace
    answer: Any = None


@dataclass(frozen=True, kw_only=True)
class Rewrite:
    """A rewriter's output for one item: the rationale text, or ``error`` when it produced none."""

    text: str | None
    error: str | None = None
    prompt_tokens: int = 0
    completion_tokens: int = 0


class Rewriter(Protocol):
    name: str

    def rewrite(self, items: Sequence[TraceItem]) -> list[Rewrite]: ...


REWRITERS: Registry[Callable[..., Rewriter]] = Registry("rewriter")


def load_rewriter(name: str, **options: Any) -> Rewriter:
    """Build the rewriter registered as ``name`` (unknown names fail with "did you mean")."""
    return REWRITERS.get(name)(**options)


# -- template sentences ---------------------------------------------------------------------------

def _plural(noun: str) -> str:
    noun = " ".join(str(noun).split())
    if not noun:
        return "objects"
    head, _, last = noun.rpartition(" ")
    if last.endswith(("s", "x", "ch", "sh")):
        p = last if last.endswith("s") else last + "es"
    elif last.endswith("y") and len(last) > 1 and last[-2] not in "aeiou":
        p = last[:-1] + "ies"
    else:
        p = last + "s"
    return f"{head} {p}".strip()


def _where(call: ToolCall, full: Box | None) -> str:
    """``""`` when the call ran on the whole image, else ``"in the region at x0 y0 x1 y1"``."""
    if call.box is None or full is None or call.box.ints() == full.ints():
        return ""
    return f"in the region at {call.box.text()}"


def _prefixed(where: str, sentence: str) -> str:
    if not where:
        return sentence
    return f"{where[0].upper()}{where[1:]}, {sentence[0].lower()}{sentence[1:]}"


def _quote(text: Any) -> str:
    return '"' + " ".join(str(text).split()).replace('"', "'") + '"'


def _detect(call: ToolCall, where: str) -> str:
    q = " ".join(str(call.args.get("query", "object")).split()) or "object"
    boxes = [b.text() for b in call.boxes]
    if not boxes:
        s = f"There is no {q}."
    elif len(boxes) == 1:
        s = f"There is one {q}, at {boxes[0]}."
    else:
        s = f"There are {len(boxes)} {_plural(q)}, at {join_and(boxes)}."
    return _prefixed(where, s)


def _count(call: ToolCall, where: str) -> str:
    q = " ".join(str(call.args.get("query", "object")).split()) or "object"
    return _prefixed(where, f"Counting {_plural(q)} gives {answer_text(call.result)}.")


def _crop(call: ToolCall, where: str) -> str:
    box = call.box.text() if call.box is not None else answer_text(call.result)
    return f"Zooming in on the region at {box}."


def _vqa(call: ToolCall, where: str) -> str:
    return _prefixed(where, f"Asked {_quote(call.args.get('question', ''))}, the answer is {answer_text(call.result)}.")


def _caption(call: ToolCall, where: str) -> str:
    text = answer_text(call.result).rstrip(".")
    return f"The region at {where[len('in the region at '):]} shows {text}." if where else f"The image shows {text}."


def _verify(call: ToolCall, where: str) -> str:
    name = " ".join(str(call.args.get("name", "object")).split())
    prop = " ".join(str(call.args.get("prop", "")).split())
    verb = "is" if call.result else "is not"
    return _prefixed(where, f"The {name} {verb} {prop}.")


def _best_text(call: ToolCall, where: str) -> str:
    options = [str(o) for o in call.args.get("options", []) or []]
    return _prefixed(where, f"Of {join_and(options) or 'the options'}, the best match is {answer_text(call.result)}.")


def _depth(call: ToolCall, where: str) -> str:
    target = f"The region at {where[len('in the region at '):]}" if where else "The image"
    return f"{target} has a relative depth of {answer_text(call.result)}."


def _llm(call: ToolCall, where: str) -> str:
    return f"Asked {_quote(call.args.get('question', ''))}, a language model answers {_quote(answer_text(call.result))}."


def _ocr(call: ToolCall, where: str) -> str:
    text = " ".join(b.label for b in call.boxes if b.label)
    return _prefixed(where, f"The text reads {_quote(text)}." if text else "There is no text.")


def _nudity(call: ToolCall, where: str) -> str:
    boxes = [f"{b.label} at {b.text()}".strip() for b in call.boxes]
    if not boxes:
        return _prefixed(where, "The nudity detector finds nothing.")
    return _prefixed(where, f"The nudity detector finds {join_and(boxes)}.")


#: tool name -> sentence form ``(call, where) -> str``. Every tool in ``TOOLS`` must have one.
TOOL_SENTENCES: dict[str, Callable[[ToolCall, str], str]] = {
    "detect": _detect, "count": _count, "crop": _crop, "vqa": _vqa, "caption": _caption,
    "verify_property": _verify, "best_text_match": _best_text, "depth": _depth,
    "llm_query": _llm, "ocr": _ocr, "nudity": _nudity,
}

_FAILED_VERB = {
    "detect": "Looking for {query}", "count": "Counting {query}", "vqa": "Asking {question}",
    "verify_property": "Checking whether the {name} is {prop}", "llm_query": "Asking a language model",
}


def call_sentence(call: ToolCall, full: Box | None = None) -> str:
    """One sentence for one tool call (a failed call says that it failed, nothing more)."""
    if call.error:
        pattern = _FAILED_VERB.get(call.tool, f"The {call.tool} step")
        try:
            what = pattern.format(**{k: " ".join(str(v).split()) for k, v in call.args.items()})
        except (KeyError, IndexError, ValueError):
            what = f"The {call.tool} step"
        return f"{what} failed, so it gives no evidence."
    fn = TOOL_SENTENCES.get(call.tool)
    if fn is None:
        return f"The {call.tool} tool returns {answer_text(call.result)}."
    return fn(call, _where(call, full))


def final_sentence(answer: Any) -> str:
    """The last sentence: it states the answer."""
    return f"Thus, the answer is {answer_text(answer)}."


def full_image_box(example: Example, trace: Trace) -> Box | None:
    """The whole image as a box: from the image header if readable, else the largest patch seen."""
    try:
        from PIL import Image

        with Image.open(example.image) as img:
            return Box(x0=0, y0=0, x1=img.width, y1=img.height)
    except Exception:
        pass
    boxes = [c.box for c in trace.calls if c.box is not None]
    if not boxes:
        return None
    return Box(x0=min(b.x0 for b in boxes), y0=min(b.y0 for b in boxes),
               x1=max(b.x1 for b in boxes), y1=max(b.y1 for b in boxes))


def compose_rationale(item: TraceItem, sentence: Callable[[ToolCall], str], *, max_calls: int = 40) -> str:
    """One ``sentence`` per tool call (at most ``max_calls``; a repeated sentence is said once), then
    the sentence stating the answer: the shape every deterministic rewriter shares."""
    sentences: list[str] = []
    seen: set[str] = set()
    for call in item.trace.calls[:max_calls]:
        s = sentence(call)
        if s not in seen:  # repeated identical calls (loops) are said once
            seen.add(s)
            sentences.append(s)
    answer = item.answer if item.answer is not None else item.trace.output
    sentences.append(final_sentence(answer))
    return " ".join(sentences)


def template_rationale(item: TraceItem, *, max_calls: int = 40) -> str:
    """The deterministic rationale for one trace (at most ``max_calls`` sentences of tool calls)."""
    full = full_image_box(item.example, item.trace)
    return compose_rationale(item, lambda call: call_sentence(call, full), max_calls=max_calls)


class TemplateRewriter:
    """Deterministic trace -> rationale (see :func:`template_rationale`)."""

    name = "template"

    def __init__(self, *, max_calls: int = 40) -> None:
        self.max_calls = max_calls

    def rewrite(self, items: Sequence[TraceItem]) -> list[Rewrite]:
        return [Rewrite(text=template_rationale(it, max_calls=self.max_calls)) for it in items]


REWRITERS.add("template", TemplateRewriter)


# -- LLM rewriter ----------------------------------------------------------------------------------

_SHOTS = [
    {
        "question": "How many cars have their brake lights on?",
        "program": "def execute_command(image):\n    image_patch = ImagePatch(image)\n"
                   "    cars = image_patch.find('car')\n    n = 0\n    for car in cars:\n"
                   "        if car.verify_property('car', 'brake lights on'):\n            n += 1\n    return n",
        "trace": "Calling find function. Detect car\nDetection result: 669 103 779 286 car, 669 468 769 664 car\n"
                 "Calling verify_property function. Verify car is brake lights on\nAnswer: yes\n"
                 "Calling verify_property function. Verify car is brake lights on\nAnswer: yes\nProgram output: 2",
        "rationale": "There are two cars, at 669 103 779 286 and 669 468 769 664. The car at 669 103 779 286 "
                     "has its brake lights on, and so does the car at 669 468 769 664. Thus, the answer is 2.",
    },
    {
        "question": "Is the mug left of the laptop?",
        "program": "def execute_command(image):\n    image_patch = ImagePatch(image)\n"
                   "    mug = image_patch.find('mug')[0]\n    laptop = image_patch.find('laptop')[0]\n"
                   "    return bool_to_yesno(mug.horizontal_center < laptop.horizontal_center)",
        "trace": "Calling find function. Detect mug\nDetection result: 40 210 120 300 mug\n"
                 "Calling find function. Detect laptop\nDetection result: 300 150 620 400 laptop\nProgram output: yes",
        "rationale": "The mug is at 40 210 120 300 and the laptop is at 300 150 620 400. The mug's centre is "
                     "further left than the laptop's. Thus, the answer is yes.",
    },
    {
        "question": "What color is the umbrella?",
        "program": "def execute_command(image):\n    image_patch = ImagePatch(image)\n"
                   "    umbrella = image_patch.find('umbrella')[0]\n"
                   "    return umbrella.simple_query('What color is the umbrella?')",
        "trace": "Calling find function. Detect umbrella\nDetection result: 12 30 210 190 umbrella\n"
                 "Calling simple_query function. Question: What color is the umbrella?\nAnswer: red\n"
                 "Program output: red",
        "rationale": "The umbrella is at 12 30 210 190. Looking at it, its color is red. Thus, the answer is red.",
    },
]

PROMPT_HEADER = (
    "Rewrite each program execution trace as a short explanation in plain English. Mention the "
    "boxes from the trace as four integers. Use only facts from the trace. End with "
    "\"Thus, the answer is ...\".\n\n"
)


def _block(question: str, program: str, trace: str) -> str:
    return f"Question: {question}\nProgram:\n{program.strip()}\nTrace:\n{trace.strip()}\nRationale:"


def llm_prompt(item: TraceItem, *, max_trace_chars: int = 1500, max_program_chars: int = 1500) -> str:
    """The few-shot prompt for one item (program and trace truncated to keep inside the context)."""
    parts = [PROMPT_HEADER]
    for shot in _SHOTS:
        parts.append(_block(shot["question"], shot["program"], shot["trace"]) + " " + shot["rationale"] + "\n\n")
    trace = item.trace.text()
    if len(trace) > max_trace_chars:
        trace = trace[: max_trace_chars] + "\n…\n" + trace.splitlines()[-1]
    parts.append(_block(item.example.question, (item.program or "")[:max_program_chars], trace))
    return "".join(parts)


_STOPS = ["\n\n", "\nQuestion:", "\nProgram:"]


def clean_completion(text: str) -> str:
    """The first paragraph of a completion (cut before any echoed "Question:"/"Program:"), one line."""
    text = text.strip().split("\n\n", 1)[0]
    for marker in ("Question:", "Program:", "Trace:"):
        i = text.find(marker)
        if i >= 0:
            text = text[:i]
    return " ".join(text.split())


class LLMRewriter:
    """Few-shot LLM rewriting through a sampler (``vpd.programs.samplers.load_sampler(spec)``)."""

    name = "llm"

    def __init__(self, *, llm: str = "gemma", sampler: Any = None, max_tokens: int = 128,
                 temperature: float = 0.0, batch_size: int = 8) -> None:
        if sampler is None:
            from vpd.programs.samplers import load_sampler

            sampler = load_sampler(llm)
        self.sampler = sampler
        self.max_tokens, self.temperature, self.batch_size = max_tokens, temperature, batch_size

    def rewrite(self, items: Sequence[TraceItem]) -> list[Rewrite]:
        out: list[Rewrite] = []
        for start in range(0, len(items), self.batch_size):
            chunk = list(items[start:start + self.batch_size])
            prompts = [llm_prompt(it) for it in chunk]
            try:
                results = self.sampler.generate(prompts, n=1, temperature=self.temperature,
                                                max_tokens=self.max_tokens, stop=_STOPS)
            except Exception as exc:  # a sampler failure costs this batch its LLM text, nothing else
                out.extend(Rewrite(text=None, error=f"sampler: {type(exc).__name__}: {exc}") for _ in chunk)
                continue
            for comps in results:
                c = comps[0] if comps else None
                if c is None or getattr(c, "error", None):
                    out.append(Rewrite(text=None, error=str(getattr(c, "error", "no completion"))))
                    continue
                text = clean_completion(c.text)
                out.append(Rewrite(text=text or None, error=None if text else "empty completion",
                                   prompt_tokens=int(getattr(c, "prompt_tokens", 0) or 0),
                                   completion_tokens=int(getattr(c, "completion_tokens", 0) or 0)))
        return out


REWRITERS.add("llm", LLMRewriter)


_ANSWER_RE = re.compile(r"(?:the\s+)?answer\s+is\s*[:\-]?\s*(.+?)\s*\.?\s*$", re.IGNORECASE | re.DOTALL)


def stated_answer(rationale: str) -> str | None:
    """The answer a rationale states in its last sentence (``"... the answer is X."``), or None."""
    text = " ".join(str(rationale).split())
    if not text:
        return None
    idx = text.lower().rfind("answer is")
    if idx < 0:
        return None
    tail = text[idx + len("answer is"):].strip().lstrip(":-").strip()
    tail = re.split(r"(?<=[^\d\s])\.(?:\s|$)|\.\s", tail + " ", maxsplit=1)[0].strip()
    tail = tail.rstrip(".").strip().strip('"').strip("'").strip()
    return tail or None


__all__ = ["REWRITERS", "TOOL_SENTENCES", "TraceItem", "Rewrite", "Rewriter", "TemplateRewriter",
           "LLMRewriter", "load_rewriter", "template_rationale", "call_sentence", "final_sentence",
           "llm_prompt", "stated_answer", "box_text"]

# the ``words`` rewriter lives in its own module; importing it registers it
from vpd.distill import rationale_words as _rationale_words  # noqa: E402,F401  (registration)
