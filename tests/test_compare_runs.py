"""Comparing finished runs question by question: Wilson intervals, per type, exact McNemar."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpd.benchmarks.ablation_data import held_out_examples
from vpd.benchmarks.ablation_stats import mcnemar_exact
from vpd.benchmarks.compare_runs import compare, main


def test_mcnemar_exact_by_hand() -> None:
    assert mcnemar_exact(0, 0) == 1.0
    assert mcnemar_exact(5, 0) == pytest.approx(2 / 32)  # all 5 discordant pairs one way
    assert mcnemar_exact(3, 3) == 1.0
    assert mcnemar_exact(1, 9) == pytest.approx(2 * 11 / 1024)  # P(X <= 1), X ~ Bin(10, 1/2), two-sided


def _write_run(folder: Path, answers: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    (folder / "predictions.jsonl").write_text(
        "".join(json.dumps({"id": i, "direct": a, "cot": None}) + "\n" for i, a in answers.items()))
    return folder


def test_compare_pairs_runs_on_the_same_questions(shapes_dir: Path, tmp_path: Path) -> None:
    examples = held_out_examples(shapes_dir, None, 20)
    truth = _write_run(tmp_path / "truth", {e.id: e.answer for e in examples})
    # wrong on the first 6 questions, silent on the 7th (a missing answer counts as wrong)
    partial = _write_run(tmp_path / "partial", {e.id: ("zzz" if i < 6 else e.answer)
                                                for i, e in enumerate(examples) if i != 6})
    rows = {r.name: r for r in compare({"truth": truth, "partial": partial}, examples)}
    assert rows["truth"].correct == 20 and rows["truth"].p_value == 1.0 and rows["truth"].low < 1.0
    p = rows["partial"]
    assert (p.correct, p.only_here, p.only_reference) == (13, 0, 7)
    assert p.p_value == pytest.approx(mcnemar_exact(0, 7)) and p.p_value < 0.05
    assert set(p.by_qtype) == {e.qtype for e in examples}
    out = tmp_path / "cmp"
    assert main(["--test", str(shapes_dir), "--split", "", "--limit", "20", "--run", f"truth={truth}",
                 "--run", f"partial={partial}", "--out", str(out)]) == 0
    saved = json.loads((out / "compare.json").read_text())
    assert [r["correct"] for r in saved["runs"]] == [20, 13] and (out / "compare.png").stat().st_size > 0
    assert "| partial | 65.0 [" in (out / "compare.md").read_text()


def test_cli_rejects_a_run_without_predictions(shapes_dir: Path, tmp_path: Path, capsys) -> None:
    assert main(["--test", str(shapes_dir), "--run", f"x={tmp_path}", "--out", str(tmp_path / "o")]) == 2
    assert "no predictions.jsonl" in capsys.readouterr().err
