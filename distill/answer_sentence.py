"""The closing answer sentence of a rationale target: find it, split it off, parse its answer.

Rationale and LSKD targets end ``"… So the answer is X."`` (:func:`vpd.distill.mixture.rationale_suffix`);
an LLM rewriter or a student may write ``"Thus, the answer is X"`` (any of *So / Thus / Therefore /
Hence*, comma optional, period optional). One definition serves three users: target shortening
(:mod:`vpd.distill.target_length` keeps the answer sentence whole), the mixture, and
chain-of-thought inference (:func:`parse_final_answer` reads the student's answer from its rationale).
"""

from __future__ import annotations

import re

ANSWER_LEAD = "So the answer is"

# the start of an answer sentence: optional connective, "the (final) answer is", optional colon
_LEAD = re.compile(r"(?:\b(?:so|thus|therefore|hence)\b,?\s+)?\bthe\s+(?:final\s+)?answer\s+is\b:?", re.IGNORECASE)
# where the answer phrase ends: a sentence end ("." / "!" / "?" then space or end of text; a decimal
# point such as "3.5" is not one) or a line break
_ANSWER_END = re.compile(r"[.!?](?=\s|$)|\n")


def split_answer_sentence(text: str) -> tuple[str, str]:
    """``(body, answer_sentence)``: the text before the last answer sentence, and that sentence to the end.

    A text without an answer sentence (a label target such as ``"2"``) is all answer: ``("", text)``.
    ``body`` has trailing spaces stripped; ``f"{body} {answer_sentence}"`` rebuilds the text (up to spaces).
    """
    last = None
    for m in _LEAD.finditer(text):
        last = m
    if last is None:
        return "", text
    return text[: last.start()].rstrip(), text[last.start():]


def parse_final_answer(text: str | None) -> str | None:
    """The answer stated by the last ``"… the answer is X"`` sentence of ``text``, or None.

    Robust to a missing period, trailing text after the sentence, a colon, quotes and a case
    change (``"Thus, the answer is: Yes"`` -> ``"Yes"``); decimals survive (``"… is 3.5."`` -> ``"3.5"``).
    None when there is no such sentence or it states nothing (e.g. a rationale cut off mid-sentence).
    """
    if not text:
        return None
    last = None
    for m in _LEAD.finditer(text):
        last = m
    if last is None:
        return None
    rest = text[last.end():]
    end = _ANSWER_END.search(rest)
    phrase = rest[: end.start()] if end else rest
    phrase = " ".join(phrase.split()).strip(" \"'`*,;:")
    return phrase or None
