"""Run store: atomic per-example blocks, torn tails repaired, resume without duplicates."""

from __future__ import annotations

import json

import pytest

from vpd.runs import ConfigMismatchError, RunExistsError, RunStore, read_candidates, read_verified
from vpd.types import Candidate, Example, Verdict


def ex(i):
    return Example(id=f"e{i}", image="x.png", question="How many cubes?", answer="2", qtype="count_simple")


def cands(e, n=3, passing=(1,)):
    return [Candidate(example_id=e.id, index=j, program=f"def execute_command(image):\n    return {j}\n",
                      answer=j, verdict=Verdict(strict=j in passing, lenient=j in passing, checker="count@1",
                                                category="none" if j in passing else "wrong_answer"))
            for j in range(n)]


def write(store, i, **kw):
    e = ex(i)
    store.write_example(e, cands(e, **kw), selected=1 if kw.get("passing", (1,)) else None)


def test_write_and_read_back(tmp_path):
    with RunStore.open(tmp_path / "run", {"k": 3}) as s:
        write(s, 0)
        write(s, 1, passing=())
    rows = list(read_candidates(tmp_path / "run"))
    assert [(e.id, c.index) for e, c, _ in rows] == [("e0", 0), ("e0", 1), ("e0", 2), ("e1", 0), ("e1", 1), ("e1", 2)]
    assert rows[0][2]["example"]["question"] == "How many cubes?" and rows[0][2]["n_candidates"] == 3
    verified = list(read_verified(tmp_path / "run"))
    assert [(e.id, c.index) for e, c in verified] == [("e0", 1)]
    assert json.loads((tmp_path / "run" / "config.json").read_text())["k"] == 3


def test_existing_run_needs_resume_or_overwrite(tmp_path):
    with RunStore.open(tmp_path / "r", {"k": 3}) as s:
        write(s, 0)
    with pytest.raises(RunExistsError, match="--resume"):
        RunStore.open(tmp_path / "r", {"k": 3})
    with RunStore.open(tmp_path / "r", {"k": 3}, overwrite=True) as s:
        assert s.done_ids() == set()


def test_resume_checks_config(tmp_path):
    RunStore.open(tmp_path / "r", {"k": 3}).close()
    with pytest.raises(ConfigMismatchError, match="k: 3 -> 4"):
        RunStore.open(tmp_path / "r", {"k": 4}, resume=True, check_keys=("k",))


@pytest.mark.parametrize("cut", [1, 10, 200, -1])
def test_torn_tail_is_truncated_and_not_counted(tmp_path, cut):
    root = tmp_path / "r"
    with RunStore.open(root, {}) as s:
        write(s, 0)
        write(s, 1)
    shard = root / "candidates-00000.jsonl"
    data = shard.read_bytes()
    first_block_end = data.index(b"\n", data.index(b'"index": 2')) + 1
    torn = data[: len(data) - cut] if cut > 0 else data[:first_block_end] + data[first_block_end:].split(b"\n")[0][:50]
    shard.write_bytes(torn)
    with RunStore.open(root, {}, resume=True) as s:
        assert s.done_ids() == {"e0"}
        assert shard.read_bytes() == data[:first_block_end]  # the torn block is gone
        write(s, 1)
    assert [e.id for e, c, _ in read_candidates(root)].count("e1") == 3
    assert shard.read_bytes() == data  # identical to the uninterrupted file


def test_verified_rebuilt_from_blocks_on_resume(tmp_path):
    root = tmp_path / "r"
    with RunStore.open(root, {}) as s:
        write(s, 0)
        write(s, 1)
    (root / "verified.jsonl").write_text((root / "verified.jsonl").read_text().splitlines()[0] + "\n" + '{"exam')
    with RunStore.open(root, {}, resume=True):
        pass
    assert [e.id for e, _ in read_verified(root)] == ["e0", "e1"]


def test_killed_between_block_and_verified_line(tmp_path):
    root = tmp_path / "r"
    with RunStore.open(root, {}) as s:
        write(s, 0)
    (root / "verified.jsonl").write_text("")  # the block was committed, its verified line was not
    with RunStore.open(root, {}, resume=True) as s:
        assert s.is_done("e0")
    assert [e.id for e, _ in read_verified(root)] == ["e0"]


def test_shards_rotate_and_resume_continues(tmp_path):
    root = tmp_path / "r"
    with RunStore.open(root, {}, shard_examples=2) as s:
        for i in range(5):
            write(s, i)
    assert [p.name for p in s.shards()] == ["candidates-00000.jsonl", "candidates-00001.jsonl", "candidates-00002.jsonl"]
    with RunStore.open(root, {}, resume=True, shard_examples=2) as s2:
        write(s2, 5)  # fills the last shard
        write(s2, 6)  # opens a new one
    assert len(s2.shards()) == 4
    assert sorted(e.id for e, c, _ in read_candidates(root) if c.index == 0) == [f"e{i}" for i in range(7)]


def test_double_commit_is_refused(tmp_path):
    with RunStore.open(tmp_path / "r", {}) as s:
        write(s, 0)
        with pytest.raises(ValueError, match="already committed"):
            write(s, 0)


def test_candidate_indices_must_match(tmp_path):
    e = ex(0)
    bad = cands(e)[::-1]
    with RunStore.open(tmp_path / "r", {}) as s, pytest.raises(ValueError, match="index"):
        s.write_example(e, bad)


def test_predictions_without_labels(tmp_path):
    root = tmp_path / "r"
    e = ex(0)
    with RunStore.open(root, {}) as s:
        s.write_example(e, cands(e), prediction=2, votes={"2": 2, "1": 1}, with_prediction=True)
    rec = json.loads((root / "predictions.jsonl").read_text())
    assert rec == {"id": "e0", "prediction": 2, "votes": {"2": 2, "1": 1}, "n_candidates": 3}
