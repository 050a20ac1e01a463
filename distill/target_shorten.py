"""Make a too-long training target fit without ever cutting its answer.

A rationale target reads ``"<rationale> So the answer is X."``; training has a static suffix budget
(``max_suffix`` tokens including ``<eos>``). :func:`shorten_target` makes the text fit, trying in
order and stopping as soon as it fits:

1. **box lists**: a list of boxes (four integers each, ``x0 y0 x1 y1`` in pixels) keeps its first
   few and says how many were left out — ``"at 1 2 3 4, 5 6 7 8 and 3 more"`` (first 4 kept, then
   3, 2, 1);
2. **sentences**: rationale sentences are dropped one at a time, the one nearest the middle first
   (the first sentence stays longest);
3. **cut**: the one remaining sentence loses words from its middle, a box counting as one word
   (``"There are 9 cubes, at ... 9 10 11 12 and 5 more."``); if not even one word fits, it is dropped too.

The closing answer sentence (:func:`vpd.distill.answer_sentence.split_answer_sentence`) is never
touched. Only when the answer sentence alone does not fit (or a label target, which is all answer,
is too long) is the answer cut: the result says so (``answer_cut``) and the encoder keeps the
answer's start. :class:`ShorteningCounts` adds results up for a report.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from typing import Callable, Iterable

from vpd.distill.answer_sentence import split_answer_sentence

BOX = r"-?\d+ -?\d+ -?\d+ -?\d+"
_BOX = re.compile(BOX)
# two or more boxes joined by ", " / " and " / ", and "; not inside a longer run of numbers
_BOX_LIST = re.compile(rf"(?<![\w.-]){BOX}(?:(?:,\s+and\s+|,\s+|\s+and\s+){BOX})+(?![\w-]|\.\d| -?\d)")
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
# the units a middle cut removes: a whole box (with its trailing punctuation) or a word
_UNIT = re.compile(rf"(?<![\w.-]){BOX}(?![\w-])\S*|\S+")
ELLIPSIS = "..."
BOX_KEEP = (4, 3, 2, 1)


@dataclass(frozen=True, kw_only=True)
class Shortening:
    """How one target was made to fit: the new ``text`` and what was done to it."""

    text: str
    box_lists: int = 0  # box lists shortened
    sentences_dropped: int = 0
    cut: bool = False  # words removed from the middle of a sentence
    answer_cut: bool = False  # the answer sentence alone did not fit: the encoder cuts into it

    @property
    def shortened(self) -> bool:
        return bool(self.box_lists or self.sentences_dropped or self.cut or self.answer_cut)

    @property
    def method(self) -> str:
        """The strongest step taken: ``none | box_lists | sentences | cut | answer_cut``."""
        if self.answer_cut:
            return "answer_cut"
        if self.cut:
            return "cut"
        if self.sentences_dropped:
            return "sentences"
        return "box_lists" if self.box_lists else "none"


def shorten_box_lists(text: str, keep: int) -> tuple[str, int]:
    """``text`` with every list of more than ``keep`` boxes cut to its first ``keep`` + ``"and N more"``.

    Returns ``(text, lists_shortened)``. ``keep >= 1``.
    """
    if keep < 1:
        raise ValueError(f"keep must be >= 1, got {keep}")
    n = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal n
        boxes = _BOX.findall(m.group(0))
        if len(boxes) <= keep:
            return m.group(0)
        n += 1
        return f"{', '.join(boxes[:keep])} and {len(boxes) - keep} more"

    return _BOX_LIST.sub(repl, text), n


def sentences(text: str) -> list[str]:
    """``text`` split after ``.``/``!``/``?`` followed by a space (decimals such as ``3.5`` stay whole)."""
    return [s for s in _SENTENCE_END.split(text.strip()) if s]


def _join(body: str, answer: str) -> str:
    return f"{body} {answer}" if body else answer


def _middle_cut(words: list[str], k: int) -> str:
    """The first ``ceil(k/2)`` and last ``floor(k/2)`` of ``words`` (words or whole boxes) around an ellipsis."""
    head, tail = words[: (k + 1) // 2], words[len(words) - k // 2:] if k // 2 else []
    return " ".join([*head, ELLIPSIS, *tail])


def shorten_target(text: str, fits: Callable[[str], bool]) -> Shortening:
    """The least-shortened version of ``text`` that ``fits`` (see the module docstring for the order).

    ``fits(candidate)`` says whether a candidate text fits the budget (e.g. token count + eos <=
    ``max_suffix``); it should be monotone in length. The answer sentence is kept whole unless it
    alone does not fit (then ``answer_cut`` and the text is the answer sentence, for the caller to cut).
    """
    if fits(text):
        return Shortening(text=text)
    body, answer = split_answer_sentence(text)
    if not fits(answer):
        return Shortening(text=answer, answer_cut=True, sentences_dropped=len(sentences(body)))
    lists, original = 0, body
    for keep in BOX_KEEP:  # 1. box lists (each level from the original text)
        short, n = shorten_box_lists(original, keep)
        if n:
            body, lists = short, n
            if fits(_join(body, answer)):
                return Shortening(text=_join(body, answer), box_lists=lists)
    sents, dropped = sentences(body), 0
    while len(sents) > 1:  # 2. middle sentences
        del sents[len(sents) // 2]
        dropped += 1
        cand = _join(" ".join(sents), answer)
        if fits(cand):
            return Shortening(text=cand, box_lists=lists, sentences_dropped=dropped)
    words = _UNIT.findall(" ".join(sents))  # 3. cut the last sentence in its middle (boxes stay whole)
    lo, hi = 0, len(words) - 1  # largest k in [1, len-1] words kept that fits
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if fits(_join(_middle_cut(words, mid), answer)):
            lo = mid
        else:
            hi = mid - 1
    if lo >= 1:
        return Shortening(text=_join(_middle_cut(words, lo), answer), box_lists=lists, sentences_dropped=dropped,
                          cut=True)
    return Shortening(text=answer, box_lists=lists, sentences_dropped=dropped + (1 if words else 0))


@dataclass(frozen=True, kw_only=True)
class ShorteningCounts:
    """Shortening over a set of targets. ``*_targets`` count targets by the strongest step taken."""

    targets: int = 0
    shortened: int = 0
    box_list_targets: int = 0
    sentence_targets: int = 0
    cut_targets: int = 0
    answers_cut: int = 0
    box_lists: int = 0  # lists shortened, over all targets
    sentences_dropped: int = 0  # over all targets
    prefixes_cut: int = 0  # prompts whose start was cut (they keep their end, the instruction)

    @classmethod
    def of(cls, shortenings: Iterable[Shortening], prefixes_cut: int = 0) -> "ShorteningCounts":
        c = dict(targets=0, shortened=0, box_list_targets=0, sentence_targets=0, cut_targets=0, answers_cut=0,
                 box_lists=0, sentences_dropped=0)
        key = {"box_lists": "box_list_targets", "sentences": "sentence_targets", "cut": "cut_targets",
               "answer_cut": "answers_cut"}
        for s in shortenings:
            c["targets"] += 1
            c["shortened"] += s.shortened
            if s.method in key:
                c[key[s.method]] += 1
            c["box_lists"] += s.box_lists
            c["sentences_dropped"] += s.sentences_dropped
        return cls(**c, prefixes_cut=prefixes_cut)

    def line(self) -> str:
        """``"12 of 900 targets shortened (9 box lists, 4 sentences dropped, 1 cut mid-sentence), 0 answers cut"``."""
        return (f"{self.shortened} of {self.targets} targets shortened ({self.box_lists} box lists, "
                f"{self.sentences_dropped} sentences dropped, {self.cut_targets} cut mid-sentence), "
                f"{self.answers_cut} answers cut" + (f"; {self.prefixes_cut} prompts cut" if self.prefixes_cut else ""))

    def to_dict(self) -> dict[str, int]:
        return asdict(self)
