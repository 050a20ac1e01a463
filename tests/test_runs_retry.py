"""Run store retries: a redone example supersedes its earlier block for every reader; the old block
stays as history; a torn retry leaves the earlier attempt in force; nothing is duplicated."""

from __future__ import annotations

import json

import pytest

from vpd.runs import RunStore, read_candidates, read_verified
from vpd.synth_failures import FailureStreak, InfrastructureFailureError, is_retryable
from vpd.types import Candidate, Example, Verdict


def ex(i):
    return Example(id=f"e{i}", image="x.png", question="How many cubes?", answer="2", qtype="count_simple")


def failed(e, category="llm_error"):
    return [Candidate(example_id=e.id, index=j, program=None, status="not_run", error="down",
                      verdict=Verdict(strict=False, lenient=False, checker="count@1", category=category))
            for j in range(2)]


def passing(e):
    return [Candidate(example_id=e.id, index=j, program="def execute_command(image):\n    return 2\n", answer=2,
                      verdict=Verdict(strict=True, lenient=True, checker="count@1", category="none"))
            for j in range(2)]


def retryable(cats, sel):
    return is_retryable(cats, selected=sel, labels=True)


def test_a_retry_supersedes_the_failed_block(tmp_path):
    root = tmp_path / "run"
    with RunStore.open(root, {}) as s:
        s.write_example(ex(0), failed(ex(0)))
        s.write_example(ex(1), passing(ex(1)), selected=0)
        s.write_example(ex(2), failed(ex(2), "program_error"))
        with pytest.raises(ValueError, match="already committed"):
            s.write_example(ex(0), passing(ex(0)), selected=0)
    with RunStore.open(root, {}, resume=True) as s:
        assert s.failed_ids(retryable) == {"e0"}  # a program bug is not retried, a verified example neither
        s.write_example(ex(0), passing(ex(0)), selected=0, replace=True)
        assert s.attempt("e0") == 2 and s.failed_ids(retryable) == set()
    rows = list(read_candidates(root))
    assert [(e.id, c.index) for e, c, _ in rows] == [("e0", 0), ("e0", 1), ("e1", 0), ("e1", 1), ("e2", 0), ("e2", 1)]
    assert rows[0][1].verdict.category == "none" and rows[0][2]["attempt"] == 2
    assert sorted(e.id for e, _ in read_verified(root)) == ["e0", "e1"]  # rebuilt on close, once each
    shard = next(root.glob("candidates-*.jsonl")).read_text().splitlines()
    assert len(shard) == 8  # the failed attempt is still there, as history
    with RunStore.open(root, {}, resume=True) as s:  # and stays superseded after reopening
        assert s.done_ids() == {"e0", "e1", "e2"} and s.attempt("e0") == 2 and s.failed_ids(retryable) == set()


def test_a_torn_retry_leaves_the_earlier_attempt(tmp_path):
    root = tmp_path / "run"
    with RunStore.open(root, {}) as s:
        s.write_example(ex(0), failed(ex(0)))
    with RunStore.open(root, {}, resume=True) as s:
        s.write_example(ex(0), passing(ex(0)), selected=0, replace=True)
    shard = next(root.glob("candidates-*.jsonl"))
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) - 40])  # killed while writing the retry
    with RunStore.open(root, {}, resume=True) as s:
        assert s.attempt("e0") == 1 and s.failed_ids(retryable) == {"e0"}
    assert [c.verdict.category for _, c, _ in read_candidates(root)] == ["llm_error", "llm_error"]
    assert list(read_verified(root)) == []


def test_predictions_are_not_duplicated_by_a_retry(tmp_path):
    root = tmp_path / "run"
    with RunStore.open(root, {}) as s:
        s.write_example(ex(0), failed(ex(0), "tool_error"), prediction=None, with_prediction=True)
    with RunStore.open(root, {}, resume=True) as s:
        assert s.failed_ids(lambda c, sel: is_retryable(c, selected=sel, labels=False)) == {"e0"}
        s.write_example(ex(0), passing(ex(0)), prediction=2, votes={"2": 2}, with_prediction=True, replace=True)
    preds = [json.loads(line) for line in (root / "predictions.jsonl").read_text().splitlines()]
    assert preds == [{"id": "e0", "prediction": 2, "votes": {"2": 2}, "n_candidates": 2}]


def _cand(category, status="error"):
    return Candidate(example_id="e", index=0, program=None, status=status,
                     verdict=Verdict(strict=False, lenient=False, category=category))


def test_failure_streak_per_layer():
    s = FailureStreak(3)
    s.add([_cand("llm_error"), _cand("llm_error"), _cand("wrong_answer", "ok")])  # a completion resets
    s.add([_cand("tool_error"), _cand("no_code", "not_run"), _cand("tool_error")])  # not_run does not reset tools
    with pytest.raises(InfrastructureFailureError, match="3 consecutive candidates failed with tool_error"):
        s.add([_cand("tool_error")])
    never = FailureStreak(0)
    never.add([_cand("llm_error")] * 50)
    with pytest.raises(InfrastructureFailureError, match="every candidate"):
        never.finish()
    ok = FailureStreak(0)
    ok.add([_cand("llm_error"), _cand("none", "ok")])
    ok.finish()  # some candidates got through: the session finished
