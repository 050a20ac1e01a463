"""Compare finished student runs on the same held-out questions: accuracy with Wilson intervals, per
question type, and exact McNemar tests paired question by question against a reference run.

    python -m vpd.benchmarks.compare_runs --test D --split val --limit 500 \\
        --run blind=OUT/runs/b1000/blind/s0 --run label=OUT2/runs/b1000/label/s0 --reference blind --out CMP

A run is a folder with ``predictions.jsonl`` (an ablation run, ``vpd.benchmarks.ablation``: one line
per question with its ``direct`` and ``cot`` answers). Questions a run did not answer count as wrong.
Writes ``CMP/compare.{json,md,png}``: a table beside the majority answer of the same questions (the
blind prior, no model) and a bar chart with 95% Wilson intervals. ``right here only / there only``
are the discordant pairs of the McNemar test; p < 0.05 says the two runs differ on these questions.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Sequence

from vpd.benchmarks.ablation_stats import mcnemar_exact, wilson


@dataclass(frozen=True, kw_only=True)
class RunComparison:
    """One run's accuracy (Wilson 95%), per-type accuracy and its paired test against the reference."""

    name: str
    folder: str
    correct: int
    n: int
    accuracy: float
    low: float
    high: float
    by_qtype: dict[str, float]
    only_here: int  # right in this run, wrong in the reference
    only_reference: int  # right in the reference, wrong here
    p_value: float


def correct_vector(folder: str | Path, examples: Sequence, *, mode: str = "direct",
                   benchmark: str = "shapes") -> list[bool]:
    """Per example (in order): did the run's ``mode`` answer pass the benchmark's lenient checker?"""
    from vpd.checkers import checker_for

    answers: dict[str, str | None] = {}
    with (Path(folder) / "predictions.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                answers[rec["id"]] = rec.get(mode)
    out = []
    for e in examples:
        ans = answers.get(e.id)
        out.append(ans is not None and bool(checker_for(e, benchmark).check(ans, e).lenient))
    return out


def compare(runs: dict[str, str | Path], examples: Sequence, *, reference: str | None = None, mode: str = "direct",
            benchmark: str = "shapes") -> list[RunComparison]:
    """One :class:`RunComparison` per run (in the given order), paired against ``reference`` (default: the first)."""
    if not runs:
        raise ValueError("no runs to compare")
    reference = reference or next(iter(runs))
    if reference not in runs:
        raise ValueError(f"reference {reference!r} is not one of the runs ({', '.join(runs)})")
    right = {name: correct_vector(folder, examples, mode=mode, benchmark=benchmark) for name, folder in runs.items()}
    ref = right[reference]
    rows = []
    for name, folder in runs.items():
        r = right[name]
        by_type: dict[str, list[int]] = {}
        for e, ok in zip(examples, r):
            cell = by_type.setdefault(e.qtype, [0, 0])
            cell[0], cell[1] = cell[0] + int(ok), cell[1] + 1
        here = sum(a and not b for a, b in zip(r, ref))
        there = sum(b and not a for a, b in zip(r, ref))
        ci = wilson(sum(r), len(r))
        rows.append(RunComparison(name=name, folder=str(folder), correct=sum(r), n=len(r), accuracy=ci.mean,
                                  low=ci.low, high=ci.high,
                                  by_qtype={t: c / n for t, (c, n) in sorted(by_type.items())},
                                  only_here=here, only_reference=there, p_value=mcnemar_exact(here, there)))
    return rows


def markdown(rows: Sequence[RunComparison], majority: float, reference: str, command: str) -> str:
    types = sorted({t for r in rows for t in r.by_qtype})
    lines = [f"Command: `{command}`", "",
             f"Majority answer per question type (blind prior, no model): **{100 * majority:.1f}%** "
             f"on {rows[0].n} questions. Paired tests are against `{reference}`.", "",
             "| run | accuracy % (Wilson 95%) | right here only / there only | McNemar p | "
             + " | ".join(types) + " |",
             "|---|---|---|---|" + "---|" * len(types)]
    for r in rows:
        paired = "—" if r.name == reference else f"{r.only_here} / {r.only_reference}"
        p = "—" if r.name == reference else f"{r.p_value:.3f}"
        lines.append(f"| {r.name} | {100 * r.accuracy:.1f} [{100 * r.low:.1f}, {100 * r.high:.1f}] | {paired} | {p} | "
                     + " | ".join(f"{100 * r.by_qtype.get(t, float('nan')):.0f}" for t in types) + " |")
    return "\n".join(lines) + "\n"


def plot(rows: Sequence[RunComparison], majority: float, path: Path) -> None:
    """Bars: accuracy per run with its Wilson 95% interval; dashed line: the majority answer."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(max(4.0, 1.1 * len(rows) + 1.5), 3.6))
    means = [100 * r.accuracy for r in rows]
    err = [[m - 100 * r.low for m, r in zip(means, rows)], [100 * r.high - m for m, r in zip(means, rows)]]
    bars = ax.bar([r.name for r in rows], means, yerr=err, capsize=3, color="#4c72b0")
    ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.axhline(100 * majority, color="#c44", ls="--", lw=1, label=f"majority answer {100 * majority:.1f}%")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title(f"{rows[0].n} held-out questions (Wilson 95%)", fontsize=9)
    ax.tick_params(axis="x", labelsize=7)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from vpd.benchmarks.ablation import majority_baseline
    from vpd.benchmarks.ablation_data import held_out_examples

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--test", required=True, help="held-out dataset folder (examples.jsonl)")
    ap.add_argument("--split", default="val", help="only examples of this split ('' = all)")
    ap.add_argument("--limit", type=int, default=None, help="first N labelled examples (as the runs were scored)")
    ap.add_argument("--run", action="append", default=[], metavar="NAME=FOLDER", help="a run folder (repeatable)")
    ap.add_argument("--reference", help="the run the others are paired against (default: the first)")
    ap.add_argument("--mode", default="direct", choices=("direct", "cot"))
    ap.add_argument("--benchmark", default="shapes", help="checker family")
    ap.add_argument("--out", required=True, help="folder for compare.{json,md,png}")
    args = ap.parse_args(argv)
    runs: dict[str, str] = {}
    for spec in args.run:
        name, sep, folder = spec.partition("=")
        if not sep or not name or not folder:
            print(f"--run wants NAME=FOLDER, got {spec!r}", file=sys.stderr)
            return 2
        if not (Path(folder) / "predictions.jsonl").is_file():
            print(f"no predictions.jsonl in {folder}", file=sys.stderr)
            return 2
        runs[name] = folder
    examples = held_out_examples(args.test, args.split or None, args.limit)
    if not examples or not runs:
        print("nothing to compare: no labelled examples or no --run", file=sys.stderr)
        return 2
    rows = compare(runs, examples, reference=args.reference, mode=args.mode, benchmark=args.benchmark)
    majority = majority_baseline(examples, args.benchmark)["accuracy"]
    reference = args.reference or rows[0].name
    text = markdown(rows, majority, reference, "python -m vpd.benchmarks.compare_runs " + " ".join(
        argv if argv is not None else sys.argv[1:]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "compare.json").write_text(json.dumps({"majority": majority, "reference": reference,
                                                  "runs": [asdict(r) for r in rows]}, indent=2) + "\n")
    (out / "compare.md").write_text(text)
    plot(rows, majority, out / "compare.png")
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
