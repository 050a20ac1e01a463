"""Answer checkers: one per benchmark style, each reporting a strict and a lenient match.

A checker compares a program's answer (plain JSON data: str, int, float, bool, list …) with an
:class:`~vpd.types.Example`'s label and returns a :class:`~vpd.types.Verdict`:

* ``strict`` — equal after the checker's normalisation;
* ``lenient`` — the checker's looser rules also accepted (number words, option text for a
  letter, ``True`` for "yes", singular/plural …). Verification keeps ``lenient`` passes
  (:attr:`Verdict.passed`); reports show both.

Registry :data:`CHECKERS`: ``vqa``, ``count``, ``yesno``, ``choice``, ``exact``, ``shapes``
(dispatches by question type). :func:`checker_for` picks one for an example. Every checker has a
``version``; a change in scoring bumps it, and it is written into every result file.

An optional LLM judge (:class:`JudgedChecker`) asks a language model about *ambiguous* misses
(neither strict nor lenient, but sharing words with the label). It is off by default.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import re
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

from vpd.registry import Registry
from vpd.types import Example, Verdict

# --------------------------------------------------------------------------------------------
# VQA-v2 style normalisation
# --------------------------------------------------------------------------------------------

NUMBER_WORDS = {
    "none": "0", "zero": "0", "one": "1", "two": "2", "three": "3", "four": "4", "five": "5",
    "six": "6", "seven": "7", "eight": "8", "nine": "9", "ten": "10", "eleven": "11",
    "twelve": "12", "thirteen": "13", "fourteen": "14", "fifteen": "15", "sixteen": "16",
    "seventeen": "17", "eighteen": "18", "nineteen": "19", "twenty": "20",
}
ARTICLES = {"a", "an", "the"}
_CONTRACTIONS = {
    "dont": "don't", "doesnt": "doesn't", "isnt": "isn't", "arent": "aren't", "cant": "can't",
    "wont": "won't", "wasnt": "wasn't", "werent": "weren't", "didnt": "didn't", "hasnt": "hasn't",
    "havent": "haven't", "shouldnt": "shouldn't", "couldnt": "couldn't", "wouldnt": "wouldn't",
    "im": "i'm", "ive": "i've", "youre": "you're", "theyre": "they're", "thats": "that's",
    "whats": "what's", "its": "it's", "lets": "let's",
}
_PUNCT = re.compile(r"[;/\[\]\"{}()=+\\_\-><@`,?!*#%^&$~|:]")
_PERIOD = re.compile(r"(?!<=\d)(\.)(?!\d)")
_COMMA_NUM = re.compile(r"(\d)(,)(\d)")


def answer_text(value: Any) -> str:
    """A program answer as text: bools become yes/no, integral floats ints, lists comma-joined."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else f"{value:g}"
    if isinstance(value, (list, tuple)):
        return ", ".join(answer_text(v) for v in value)
    if isinstance(value, dict):
        return str(value.get("answer", value.get("label", "")))
    return str(value)


def normalize_vqa(text: Any) -> str:
    """VQA-v2 normalisation: lower case, punctuation stripped, number words to digits,
    articles dropped, common contractions fixed. ``"Two Dogs."`` -> ``"2 dogs"``."""
    s = answer_text(text).replace("\n", " ").replace("\t", " ").strip().lower()
    s = _COMMA_NUM.sub(r"\1\3", s)  # 1,000 -> 1000
    s = _PUNCT.sub(" ", s)
    s = _PERIOD.sub("", s)
    out: list[str] = []
    for word in s.split():
        word = NUMBER_WORDS.get(word, word)
        if word in ARTICLES:
            continue
        out.append(_CONTRACTIONS.get(word, word))
    return " ".join(out)


def _singular(word: str) -> str:
    if len(word) > 3 and word.endswith("ies"):
        return word[:-3] + "y"
    if len(word) > 3 and word.endswith(("ses", "xes", "ches", "shes")):
        return word[:-2]
    if len(word) > 2 and word.endswith("s") and not word.endswith("ss"):
        return word[:-1]
    return word


def _singular_phrase(text: str) -> str:
    return " ".join(_singular(w) for w in text.split())


def parse_int(value: Any) -> int | None:
    """An integer from an answer: ints, integral floats, digit strings, number words; else None.

    Bools are not numbers here (``True`` is not a count).
    """
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return int(value) if value.is_integer() else None
    text = normalize_vqa(value)
    if re.fullmatch(r"-?\d+", text):
        return int(text)
    if re.fullmatch(r"-?\d+\.0+", text):
        return int(float(text))
    return None


def first_int(value: Any) -> int | None:
    """The first integer mentioned in an answer ("2 cubes" -> 2, "there are three" -> 3)."""
    n = parse_int(value)
    if n is not None:
        return n
    if isinstance(value, (bool, int, float)) or value is None:
        return None
    nums = re.findall(r"-?\d+", normalize_vqa(value))
    return int(nums[0]) if len(nums) == 1 else None


# --------------------------------------------------------------------------------------------
# Checkers
# --------------------------------------------------------------------------------------------


class Checker(Protocol):
    name: str
    version: str

    def check(self, prediction: Any, example: Example) -> Verdict: ...

    def normalize(self, prediction: Any, example: Example) -> str: ...


CHECKERS: Registry[type["BaseChecker"]] = Registry("checker")


class BaseChecker(ABC):
    """Shared plumbing: ``check`` builds the verdict from ``_match`` -> (strict, lenient, detail)."""

    name: ClassVar[str] = ""
    version: ClassVar[str] = "1"

    def check(self, prediction: Any, example: Example) -> Verdict:
        if example.answer is None:
            return Verdict(strict=False, lenient=False, checker=self.tag, category="no_label",
                           detail="example has no label")
        strict, lenient, detail = self._match(prediction, example)
        lenient = lenient or strict
        return Verdict(strict=strict, lenient=lenient, checker=self.tag,
                       category="none" if lenient else "wrong_answer", detail=detail)

    @property
    def tag(self) -> str:
        return f"{self.name}@{self.version}"

    def normalize(self, prediction: Any, example: Example) -> str:
        """The key used for majority votes: equal keys mean the same answer."""
        return normalize_vqa(prediction)

    @abstractmethod
    def _match(self, prediction: Any, example: Example) -> tuple[bool, bool, str]:
        """``(strict, lenient, detail)`` for ``prediction`` against ``example``'s label."""


def _register(name: str):
    def deco(cls: type[BaseChecker]) -> type[BaseChecker]:
        cls.name = name
        CHECKERS.add(name, cls)
        return cls

    return deco


@_register("exact")
class ExactChecker(BaseChecker):
    """Strict: identical text after trimming. Lenient: equal ignoring case and outer spaces."""

    def normalize(self, prediction: Any, example: Example) -> str:
        return answer_text(prediction).strip()

    def _match(self, prediction: Any, example: Example) -> tuple[bool, bool, str]:
        p, a = answer_text(prediction).strip(), str(example.answer).strip()
        return p == a, p.casefold() == a.casefold(), f"{p!r} vs {a!r}"


@_register("vqa")
class VQAChecker(BaseChecker):
    """VQA-v2 normalisation. Strict: normalised texts equal (any of ``metadata['answers']`` too).
    Lenient: also equal after singularising every word (``cubes`` = ``cube``)."""

    def _labels(self, example: Example) -> list[str]:
        extra = example.metadata.get("answers") if isinstance(example.metadata, dict) else None
        labels = [str(example.answer)]
        if isinstance(extra, (list, tuple)):
            labels += [str(a) for a in extra]
        return [normalize_vqa(a) for a in labels]

    def _match(self, prediction: Any, example: Example) -> tuple[bool, bool, str]:
        p = normalize_vqa(prediction)
        labels = self._labels(example)
        strict = p != "" and p in labels
        lenient = p != "" and _singular_phrase(p) in {_singular_phrase(a) for a in labels}
        return strict, lenient, f"{p!r} vs {labels[0]!r}"


@_register("count")
class CountChecker(BaseChecker):
    """Integer counts. Strict: the answer is an integer (int, integral float, digit string or
    number word) equal to the label. Lenient: the one number inside a phrase ("2 cubes")."""

    def normalize(self, prediction: Any, example: Example) -> str:
        n = first_int(prediction)
        return str(n) if n is not None else normalize_vqa(prediction)

    def _match(self, prediction: Any, example: Example) -> tuple[bool, bool, str]:
        label = parse_int(example.answer)
        if label is None:
            return False, False, f"label {example.answer!r} is not an integer"
        p = parse_int(prediction)
        loose = first_int(prediction)
        return p == label, loose == label, f"{answer_text(prediction)!r} vs {label}"


_YES = {"yes", "true", "y", "yeah", "yep", "correct"}
_NO = {"no", "false", "n", "nope", "incorrect"}


def yesno_of(value: Any, lenient: bool = False) -> str | None:
    """``"yes"``/``"no"`` or None. Strict accepts the words only (any case/punctuation); lenient
    also bools, true/false and a leading yes/no ("yes, there is")."""
    if isinstance(value, bool):
        return ("yes" if value else "no") if lenient else None
    text = normalize_vqa(value)
    if text in ("yes", "no"):
        return text
    if not lenient:
        return None
    if text in _YES:
        return "yes"
    if text in _NO:
        return "no"
    first = text.split(" ", 1)[0] if text else ""
    return first if first in ("yes", "no") else None


@_register("yesno")
class YesNoChecker(BaseChecker):
    """Yes/no answers. Strict: the word yes/no. Lenient: bools, true/false, "yes, …"."""

    def normalize(self, prediction: Any, example: Example) -> str:
        return yesno_of(prediction, lenient=True) or normalize_vqa(prediction)

    def _match(self, prediction: Any, example: Example) -> tuple[bool, bool, str]:
        label = yesno_of(example.answer, lenient=True)
        if label is None:
            return False, False, f"label {example.answer!r} is not yes/no"
        return (yesno_of(prediction) == label, yesno_of(prediction, lenient=True) == label,
                f"{answer_text(prediction)!r} vs {label}")


_LETTER = re.compile(r"^\(?([A-Za-z])\)?[.):]?$")
_LETTER_PREFIX = re.compile(r"^\(?([A-Za-z])[.):]\s+(.+)$")


def choice_letter(value: Any, choices: tuple[str, ...] | None) -> str | None:
    """The letter of a multiple-choice answer given as ``"B"``, ``"(b)"``, ``"B."``, ``"B) blue"``."""
    text = answer_text(value).strip()
    m = _LETTER.match(text) or _LETTER_PREFIX.match(text)
    if not m:
        return None
    letter = m.group(1).upper()
    n = len(choices or ())
    return letter if n == 0 or ord(letter) - 65 < n else None


def option_letter(value: Any, choices: tuple[str, ...] | None) -> str | None:
    """The letter of the option whose text equals the answer (VQA-normalised), if exactly one."""
    if not choices:
        return None
    p = normalize_vqa(value)
    m = _LETTER_PREFIX.match(answer_text(value).strip())
    if m:
        p = normalize_vqa(m.group(2))
    hits = [chr(65 + i) for i, c in enumerate(choices) if p and normalize_vqa(c) == p]
    return hits[0] if len(hits) == 1 else None


@_register("choice")
class ChoiceChecker(BaseChecker):
    """Multiple choice. The label is a letter (or an option's text). Strict: the answer is the
    letter. Lenient: the answer is the option's text (VQA-normalised) or ``"B) text"``."""

    def _label_letter(self, example: Example) -> str | None:
        return choice_letter(example.answer, example.choices) or option_letter(example.answer, example.choices)

    def normalize(self, prediction: Any, example: Example) -> str:
        letter = choice_letter(prediction, example.choices) or option_letter(prediction, example.choices)
        return letter or normalize_vqa(prediction)

    def _match(self, prediction: Any, example: Example) -> tuple[bool, bool, str]:
        label = self._label_letter(example)
        if label is None:
            return False, False, f"label {example.answer!r} is not an option"
        text = answer_text(prediction).strip()
        strict = bool(_LETTER.match(text)) and choice_letter(prediction, example.choices) == label
        lenient = (choice_letter(prediction, example.choices) == label
                   or option_letter(prediction, example.choices) == label)
        return strict, lenient, f"{text!r} vs {label}"


_SHAPES_QTYPES = {
    "count_simple": "count", "count_complex": "count", "exists": "yesno", "choice": "choice",
}


@_register("shapes")
class ShapesChecker(BaseChecker):
    """The synthetic shapes world: dispatch by ``qtype`` (counts, exists -> yes/no, choice);
    ``attribute``/``spatial``/``compare`` by the label's form (yes/no, integer, else VQA)."""

    def delegate(self, example: Example) -> BaseChecker:
        return _INSTANCES[_infer_checker_name(example, _SHAPES_QTYPES.get(example.qtype))]

    def normalize(self, prediction: Any, example: Example) -> str:
        return self.delegate(example).normalize(prediction, example)

    def _match(self, prediction: Any, example: Example) -> tuple[bool, bool, str]:
        inner = self.delegate(example)
        strict, lenient, detail = inner._match(prediction, example)
        return strict, lenient, f"{inner.name}: {detail}"


def _infer_checker_name(example: Example, hint: str | None = None) -> str:
    if hint:
        return hint
    if example.choices:
        return "choice"
    q = example.qtype.lower()
    if q.startswith("count") or q in ("number", "counting"):
        return "count"
    if q in ("yesno", "yes/no", "exists", "binary"):
        return "yesno"
    if example.answer is not None:
        if yesno_of(example.answer) is not None:
            return "yesno"
        if parse_int(example.answer) is not None:
            return "count"
    return "vqa"


_INSTANCES: dict[str, BaseChecker] = {}


def get_checker(name: str) -> BaseChecker:
    """The (shared, stateless) checker registered as ``name``."""
    if name not in _INSTANCES:
        _INSTANCES[name] = CHECKERS.get(name)()
    return _INSTANCES[name]


for _n in ("exact", "vqa", "count", "yesno", "choice"):
    get_checker(_n)


def checker_for(example: Example, benchmark: str | None = None) -> BaseChecker:
    """The checker for ``example``.

    ``benchmark`` may name a checker (``"vqa"``) or a benchmark whose module declares a
    ``checker`` attribute (``vpd.benchmarks.registry.BENCHMARKS``); ``"shapes"`` uses the shapes
    dispatcher. Otherwise the checker is inferred from the example: choices -> choice, count
    qtypes or integer labels -> count, yes/no labels -> yesno, else vqa.
    """
    if benchmark:
        if benchmark in CHECKERS:
            return get_checker(benchmark)
        name = _benchmark_checker_name(benchmark)
        if name:
            return get_checker(name)
    return get_checker(_infer_checker_name(example))


def _benchmark_checker_name(benchmark: str) -> str | None:
    try:
        from vpd.benchmarks.registry import BENCHMARKS  # type: ignore[import-not-found]
    except ImportError:
        return None
    if benchmark not in BENCHMARKS:
        return None
    name = getattr(BENCHMARKS.get(benchmark), "checker", None)
    return name if isinstance(name, str) and name in CHECKERS else None


def checker_versions() -> dict[str, str]:
    """name -> version of every registered checker (for manifests)."""
    return {name: cls.version for name, cls in CHECKERS.items()}


# --------------------------------------------------------------------------------------------
# Optional LLM judge
# --------------------------------------------------------------------------------------------

JUDGE_PROMPT = (
    "Decide whether a predicted answer means the same as the reference answer to a question.\n"
    "Question: {question}\nReference answer: {answer}\nPredicted answer: {prediction}\n"
    "Do they mean the same? Answer yes or no.\nAnswer:"
)


class JudgedChecker:
    """Wraps a checker; on an *ambiguous* miss asks an LLM whether the answers mean the same.

    Ambiguous: not lenient, both texts non-empty and sharing at least one word (after VQA
    normalisation). A judge "yes" sets ``lenient`` (never ``strict``) and notes it in ``detail``.
    ``generate`` is a function ``prompts -> texts`` (e.g. built from a sampler with
    :func:`judge_from_sampler`). Off by default: synth uses it only with ``--judge``.
    """

    def __init__(self, inner: BaseChecker, generate: Callable[[list[str]], list[str]]) -> None:
        self.inner = inner
        self.generate = generate
        self.name = inner.name
        self.version = inner.version + "+judge"
        self.calls = 0

    def normalize(self, prediction: Any, example: Example) -> str:
        return self.inner.normalize(prediction, example)

    @staticmethod
    def ambiguous(prediction: Any, example: Example) -> bool:
        p, a = set(normalize_vqa(prediction).split()), set(normalize_vqa(example.answer).split())
        return bool(p and a and (p & a))

    def check(self, prediction: Any, example: Example) -> Verdict:
        verdict = self.inner.check(prediction, example)
        if verdict.lenient or example.answer is None or not self.ambiguous(prediction, example):
            return verdict
        self.calls += 1
        prompt = JUDGE_PROMPT.format(question=example.question, answer=example.answer,
                                     prediction=answer_text(prediction))
        try:
            reply = self.generate([prompt])[0]
        except Exception as exc:  # a judge failure never fails the check
            return Verdict(strict=False, lenient=False, checker=verdict.checker, category=verdict.category,
                           detail=f"{verdict.detail}; judge failed: {exc}")
        same = yesno_of(reply, lenient=True) == "yes"
        return Verdict(strict=False, lenient=same, checker=verdict.checker + "+judge",
                       category="none" if same else verdict.category,
                       detail=f"{verdict.detail}; judge said {reply.strip()[:40]!r}")


def judge_from_sampler(sampler: Any, max_tokens: int = 4) -> Callable[[list[str]], list[str]]:
    """A judge ``generate`` function from a :mod:`vpd.programs` sampler (greedy, short)."""

    def generate(prompts: list[str]) -> list[str]:
        outs = sampler.generate(prompts, n=1, temperature=0.0, max_tokens=max_tokens, stop=["\n"])
        return [(o[0].text if o and not o[0].error else "") for o in outs]

    return generate
