"""Question selection for bounded-LLM synth (vpd.question_select, `vpd data select`)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from typer.testing import CliRunner

from vpd.cli import app
from vpd.datasets import read_examples
from vpd.question_select import coverage, in_rank_order, pick_frequent_questions, question_key, ranked_questions
from vpd.types import Example

runner = CliRunner()


def _ex(i: int, q: str, qtype: str, choices: tuple[str, ...] | None = None) -> Example:
    return Example(id=f"e{i}", image=f"/img/{i}.png", question=q, answer="x", choices=choices, qtype=qtype)


def _examples() -> list[Example]:
    spec = [("count A", "count", 3), ("count B", "count", 5), ("count C", "count", 1),
            ("exists A", "exists", 2), ("exists B", "exists", 2), ("pick", "choice", 4)]
    out, i = [], 0
    for rnd in range(5):  # interleave so input order differs from frequency order
        for q, t, n in spec:
            if rnd < n:
                out.append(_ex(i, q, t, ("a", "b") if t == "choice" else None))
                i += 1
    return out


def test_ranked_round_robin_by_qtype_most_frequent_first():
    ranked = [q for q, _ in ranked_questions(_examples())]
    # sorted qtypes: choice, count, exists; within a type by frequency, ties by first appearance
    assert ranked == ["pick", "count B", "exists A", "count A", "exists B", "count C"]


def test_pick_keeps_input_order_and_cuts():
    exs = _examples()
    chosen = pick_frequent_questions(exs, 3)
    assert {e.question for e in chosen} == {"pick", "count B", "exists A"}
    assert len(chosen) == 4 + 5 + 2
    assert [e.id for e in chosen] == [e.id for e in exs if e in chosen]
    assert len(pick_frequent_questions(exs, 3, max_examples=7)) == 7
    assert pick_frequent_questions(exs, 0) == []


def test_rank_order_groups_questions_most_valuable_first():
    exs = _examples()
    ordered = in_rank_order(exs)
    assert sorted(e.id for e in ordered) == sorted(e.id for e in exs)
    firsts = list(dict.fromkeys(e.question for e in ordered))
    assert firsts == [q for q, _ in ranked_questions(exs)]
    # grouped: each question's examples are contiguous and keep their input order
    pos = [e.question for e in ordered]
    assert all(pos.index(q) + pos.count(q) - 1 == len(pos) - 1 - pos[::-1].index(q) for q in set(pos))
    assert [e.id for e in ordered if e.question == "count B"] == [e.id for e in exs if e.question == "count B"]


def test_choices_are_part_of_the_key():
    exs = [_ex(0, "pick", "choice", ("a", "b")), _ex(1, "pick", "choice", ("c", "d")), _ex(2, "pick", "choice", ("a", "b"))]
    assert len(ranked_questions(exs)) == 2
    assert [e.id for e in pick_frequent_questions(exs, 1)] == ["e0", "e2"]


def test_coverage_is_cumulative_and_clipped():
    pts = coverage(_examples(), [1, 3, 100])
    assert [(p.questions, p.examples) for p in pts] == [(1, 4), (3, 11), (6, 17)]
    assert pts[-1].share == 1.0


def test_cli_select_writes_loadable_jsonl(tmp_path: Path):
    data = tmp_path / "d"
    res = runner.invoke(app, ["data", "shapes", "--n", "30", "--seed", "2", "--per-image", "4", "--out", str(data)])
    assert res.exit_code == 0, res.output
    out = tmp_path / "elsewhere" / "chosen.jsonl"
    res = runner.invoke(app, ["data", "select", "--data", str(data), "--split", "train", "--questions", "5",
                              "--out", str(out), "--coverage", "1,5"])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output.strip().splitlines()[-1])
    chosen, bad = read_examples(out)
    assert not bad and len(chosen) == summary["chosen_examples"] > 0
    assert summary["chosen_questions"] == len({question_key(e) for e in chosen}) == 5
    assert all(e.metadata["split"] == "train" and Path(e.image).is_file() for e in chosen)
    assert [e.id for e in chosen] == [e.id for e in in_rank_order(chosen)]  # written in rank order
    train, _ = read_examples(data)
    train = [e for e in train if e.metadata["split"] == "train"]
    assert summary["input_examples"] == len(train)
    assert summary["coverage"][1]["examples"] == len(chosen)
    # within each question type, every chosen question is at least as frequent as any left out
    freq = Counter(question_key(e) for e in train)
    qtype = {question_key(e): e.qtype for e in train}
    picked = {question_key(e) for e in chosen}
    for t in set(qtype.values()):
        inside = [freq[k] for k in picked if qtype[k] == t]
        outside = [freq[k] for k in freq if k not in picked and qtype[k] == t]
        if inside and outside:
            assert min(inside) >= max(outside)


def test_cli_select_rejects_empty_split(tmp_path: Path):
    data = tmp_path / "d"
    assert runner.invoke(app, ["data", "shapes", "--n", "5", "--seed", "0", "--split", "val", "--out", str(data)]).exit_code == 0
    res = runner.invoke(app, ["data", "select", "--data", str(data), "--split", "train", "--questions", "2"])
    assert res.exit_code != 0
    assert "no examples" in res.output
