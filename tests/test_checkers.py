"""Answer checkers: VQA normalisation, counts, yes/no, multiple choice, shapes dispatch, judge."""

from __future__ import annotations

import pytest

from vpd.checkers import (CHECKERS, JudgedChecker, checker_for, get_checker, normalize_vqa, parse_int)
from vpd.registry import UnknownNameError
from vpd.types import Example


def ex(answer, qtype="", choices=None, **meta):
    return Example(id="e", image="x.png", question="q?", answer=answer, qtype=qtype,
                   choices=tuple(choices) if choices else None, metadata=meta)


@pytest.mark.parametrize("raw,norm", [
    ("Two Dogs.", "2 dogs"), ("  the RED cube ", "red cube"), ("an apple!", "apple"),
    ("yes.", "yes"), ("1,000", "1000"), ("dont", "don't"), ("3.5", "3.5"), ("none", "0"),
    (True, "yes"), (2.0, "2"),
])
def test_normalize_vqa(raw, norm):
    assert normalize_vqa(raw) == norm


def test_registry_names_and_unknown():
    assert {"vqa", "count", "yesno", "choice", "exact", "shapes"} <= set(CHECKERS.names())
    with pytest.raises(UnknownNameError, match="did you mean"):
        CHECKERS.get("yesn")


@pytest.mark.parametrize("pred,strict,lenient", [
    ("Red", True, True), ("the red.", True, True), ("blue", False, False), ("reds", False, True), ("", False, False),
])
def test_vqa(pred, strict, lenient):
    v = get_checker("vqa").check(pred, ex("red"))
    assert (v.strict, v.lenient) == (strict, lenient)
    assert v.category == ("none" if lenient else "wrong_answer")
    assert v.checker.startswith("vqa@")


def test_vqa_any_of_several_answers():
    assert get_checker("vqa").check("crimson", ex("red", answers=["crimson", "scarlet"])).strict


@pytest.mark.parametrize("pred,strict,lenient", [
    (3, True, True), ("3", True, True), (3.0, True, True), ("three", True, True),
    ("3 cubes", False, True), ("4", False, False), (True, False, False), ("many", False, False),
    ("2 or 3", False, False),
])
def test_count(pred, strict, lenient):
    v = get_checker("count").check(pred, ex("3", "count_simple"))
    assert (v.strict, v.lenient) == (strict, lenient)


@pytest.mark.parametrize("pred,strict,lenient", [
    ("yes", True, True), ("Yes.", True, True), (True, False, True), ("true", False, True),
    ("yes, there is", False, True), ("no", False, False), (False, False, False), ("maybe", False, False),
])
def test_yesno(pred, strict, lenient):
    v = get_checker("yesno").check(pred, ex("yes", "exists"))
    assert (v.strict, v.lenient) == (strict, lenient)


CHOICES = ["red", "blue", "green"]


@pytest.mark.parametrize("pred,strict,lenient", [
    ("B", True, True), ("b", True, True), ("(B)", True, True), ("B.", True, True),
    ("blue", False, True), ("Blue.", False, True), ("B) blue", False, True),
    ("A", False, False), ("red", False, False), ("D", False, False), ("purple", False, False),
])
def test_choice(pred, strict, lenient):
    v = get_checker("choice").check(pred, ex("B", "choice", CHOICES))
    assert (v.strict, v.lenient) == (strict, lenient)


def test_choice_label_given_as_text():
    assert get_checker("choice").check("B", ex("blue", "choice", CHOICES)).lenient


def test_no_label_is_not_a_pass():
    v = get_checker("vqa").check("red", ex(None))
    assert not v.lenient and v.category == "no_label"


@pytest.mark.parametrize("qtype,answer,choices,pred,ok", [
    ("count_simple", "2", None, "two", True), ("count_complex", "2", None, 3, False),
    ("exists", "no", None, False, True), ("choice", "C", CHOICES, "green", True),
    ("attribute", "red", None, "Red", True), ("spatial", "yes", None, "yes", True),
    ("compare", "3", None, 3, True),
])
def test_shapes_dispatch(qtype, answer, choices, pred, ok):
    e = ex(answer, qtype, choices)
    assert get_checker("shapes").check(pred, e).lenient is ok
    assert checker_for(e, "shapes").name == "shapes"


def test_checker_for_infers():
    assert checker_for(ex("B", choices=CHOICES)).name == "choice"
    assert checker_for(ex("4", "count_simple")).name == "count"
    assert checker_for(ex("yes")).name == "yesno"
    assert checker_for(ex("giraffe")).name == "vqa"
    assert checker_for(ex("giraffe"), "exact").name == "exact"


def test_parse_int_rejects_non_integers():
    assert parse_int("2.5") is None and parse_int(None) is None and parse_int(False) is None


def test_normalize_for_votes_groups_equivalent_answers():
    c = get_checker("choice")
    e = ex("B", "choice", CHOICES)
    assert c.normalize("blue", e) == c.normalize("B", e) == "B"
    assert get_checker("count").normalize("3 cubes", ex("3")) == "3"


def test_judge_only_on_ambiguous_misses():
    asked = []

    def fake_llm(prompts):
        asked.extend(prompts)
        return ["Yes"]

    judged = JudgedChecker(get_checker("vqa"), fake_llm)
    assert judged.check("dark red", ex("red")).lenient  # shares a word: asked, judge says yes
    assert not judged.check("dark red", ex("red")).strict
    assert not judged.check("blue", ex("red")).lenient  # no shared word: not asked
    assert judged.check("red", ex("red")).strict       # already a match: not asked
    assert judged.calls == 2 and len(asked) == 2 and "Reference answer: red" in asked[0]


def test_judge_failure_is_a_recorded_miss():
    def broken(prompts):
        raise ConnectionError("refused")

    v = JudgedChecker(get_checker("vqa"), broken).check("dark red", ex("red"))
    assert not v.lenient and "judge failed" in v.detail
