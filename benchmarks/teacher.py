"""The program teacher as a solver: the programs a ``vpd synth`` run verified on training images,
run on held-out test images of the same questions (the solver VPD distils from).

    python -m vpd.benchmarks.teacher --run SYNTH_RUN --test D --split test --out OUT

writes

* ``OUT/teacher_programs.jsonl`` — per distinct (question, choices) the most common verified
  program's raw completion (the ``replay:`` sampler's format);
* ``OUT/test_covered/examples.jsonl`` — the test examples whose question has such a program
  (image paths made absolute), the common held-out set of the teacher and the students;

and prints the command that runs the teacher without labels:
``vpd synth --data OUT/test_covered --llm replay:OUT/teacher_programs.jsonl --k 1 --no-labels …``
(its ``predictions.jsonl`` is the ablation's ``--teacher``).
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path


def _key(question: str, choices) -> tuple[str, tuple[str, ...] | None]:
    return question, None if not choices else tuple(str(c) for c in choices)


def teacher_programs(run: Path) -> dict[tuple, str]:
    """(question, choices) -> the raw completion of its most often selected verified program."""
    votes: dict[tuple, Counter] = {}
    with (run / "verified.jsonl").open(encoding="utf-8") as fh:
        for line in fh:
            if line.strip():
                rec = json.loads(line)
                ex, cand = rec["example"], rec["candidate"]
                raw = cand.get("raw_completion") or cand.get("program")
                if raw:
                    votes.setdefault(_key(ex["question"], ex.get("choices")), Counter())[raw] += 1
    return {k: c.most_common(1)[0][0] for k, c in votes.items()}


def covered_test(test: Path, split: str | None, programs: dict[tuple, str]) -> list[dict]:
    """Test records (absolute image paths) whose question has a teacher program."""
    out = []
    for line in (test / "examples.jsonl").read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        rec = json.loads(line)
        if split and rec.get("split") != split:
            continue
        if _key(rec["question"], rec.get("choices")) in programs:
            out.append(dict(rec, image=str((test / rec["image"]).resolve())))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--run", type=Path, required=True, help="vpd synth run directory (verified.jsonl)")
    ap.add_argument("--test", type=Path, required=True, help="dataset folder with the held-out examples")
    ap.add_argument("--split", default="test")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args(argv)
    programs = teacher_programs(args.run)
    if not programs:
        raise SystemExit(f"{args.run}: no verified programs")
    covered = covered_test(args.test, args.split or None, programs)
    args.out.mkdir(parents=True, exist_ok=True)
    with (args.out / "teacher_programs.jsonl").open("w", encoding="utf-8") as fh:
        for (q, ch), raw in sorted(programs.items(), key=lambda kv: kv[0][0]):
            fh.write(json.dumps({"question": q, "choices": list(ch) if ch else None, "completions": [raw]}) + "\n")
    folder = args.out / "test_covered"
    folder.mkdir(exist_ok=True)
    (folder / "examples.jsonl").write_text("".join(json.dumps(r) + "\n" for r in covered), encoding="utf-8")
    print(f"{len(programs)} teacher programs; {len(covered)} {args.split or 'all'} examples covered -> {folder}")
    print(f"run the teacher: vpd synth --data {folder} --out {args.out / 'teacher_run'} "
          f"--llm replay:{args.out / 'teacher_programs.jsonl'} --k 1 --no-labels --cache memory")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
