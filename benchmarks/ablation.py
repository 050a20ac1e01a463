"""The VPD ablation: does training on program-derived rationales make a better student?

    python -m vpd.benchmarks.ablation --mixture DS --test D --split test --base BASE \\
        --budgets 250,1000,4000 --seeds 3 --steps 600 --out OUT

Arms (``--arms``), each instruction-tuned from the same pretrained ``--base`` (``vpd pretrain``) with
the same steps, batch, learning rate and seed (see :mod:`vpd.benchmarks.ablation_data`):

* ``blind``    — label-only training with every image replaced by one grey image, evaluated on it:
  the question-only control every VQA paper reports (the answer prior a model can learn blind);
* ``base``     — the pretrained base, untuned (it has never seen a question);
* ``label``    — label-only instruction tuning;
* ``vpd``      — labels + rationales of the same examples (VPD's multitask mixture);
* ``vpd-long`` — ``vpd`` trained for more steps, so each label line is seen as often as in ``label``
  (equal exposure: steps × the arm's lines / the label arm's lines, replay counted in both);
* ``vpd+lskd`` — ``vpd`` + the mixture's LSKD triples;
* ``teacher``  — the programs themselves as a zero-shot solver (``--teacher PRED.jsonl`` from
  ``vpd synth --no-labels`` on the same test questions), scored by the same checker.

Trained arms answer every held-out question in ``direct`` mode (label prompt); arms trained on
rationales also in ``cot`` mode (rationale prompt, answer parsed from its last sentence). Each
(budget, arm, seed) is one folder under ``OUT/runs/`` with ``score.json``; a rerun skips finished
ones (resumable; ``--report-only`` trains nothing and reports what has finished). Reports mean ± 95%
CI over seeds (Student's t; a single seed gets the Wilson interval over questions), the paired
VPD − label difference per budget, per-question-type accuracy, the majority-answer baseline of the
test split, ``OUT/ablation.{json,md,png}``.

``--replay-pretrain N`` mixes N of the base's own pretraining records into every trained arm;
``--grid-weight W`` keeps the base's dense grid loss (:mod:`vpd.distill.grid_targets`) alive at weight
W on those replayed records (they carry their scene), so instruction tuning keeps the encoder's
per-cell supervision. A finished run is reused by folder, so a changed recipe needs its own ``--out``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time
from collections import Counter
from pathlib import Path
from typing import Any, Sequence

from vpd.benchmarks.ablation_data import (arm_lines, blind_image, equal_exposure_steps, held_out_examples,
                                          read_lines, replay_lines, sample_budget, write_lines)
from vpd.benchmarks.ablation_stats import Interval, paired_difference, t_interval, wilson

ALL_ARMS = ("blind", "base", "label", "vpd", "vpd-long", "vpd+lskd", "teacher")
RATIONALE_ARMS = ("vpd", "vpd-long", "vpd+lskd")


def majority_baseline(examples: Sequence, benchmark: str) -> dict[str, Any]:
    """Accuracy of answering each question type's most common answer (a prior, not a model)."""
    from vpd.checkers import checker_for

    by_type: dict[str, Counter] = {}
    for e in examples:
        by_type.setdefault(e.qtype, Counter())[e.answer] += 1
    correct = sum(int(checker_for(e, benchmark).check(by_type[e.qtype].most_common(1)[0][0], e).lenient)
                  for e in examples)
    return {"accuracy": correct / max(len(examples), 1), "n": len(examples),
            "answers": {t: c.most_common(1)[0][0] for t, c in sorted(by_type.items())}}


def held_out_difficulty(examples: Sequence) -> str:
    """The ``shapes`` difficulty level(s) of the held-out examples (``easy`` when unrecorded)."""
    return ",".join(sorted({str(e.metadata.get("difficulty") or "easy") for e in examples})) or "easy"


def _score(examples: Sequence, preds: Sequence, modes: Sequence[str], benchmark: str) -> dict[str, Any]:
    """Per mode: accuracy and counts (``score_modes``) plus ``by_qtype`` {qtype: [correct, n]}."""
    from vpd.checkers import checker_for
    from vpd.distill.vlm_predict import score_modes

    scores = score_modes(examples, preds, modes=modes, benchmark=benchmark)
    by_id = {p.id: p for p in preds}
    out = {}
    for mode, s in scores.items():
        by_type: dict[str, list[int]] = {}
        for e in examples:  # per question type, from the Example's own qtype
            row = by_type.setdefault(e.qtype, [0, 0])
            row[1] += 1
            p = by_id.get(e.id)
            ans = None if p is None or p.error else p.answer(mode)
            row[0] += int(ans is not None and checker_for(e, benchmark).check(ans, e).lenient)
        out[mode] = {"accuracy": s.accuracy, "correct": s.correct, "n": s.scored, "unparsed": s.unparsed,
                     "errors": s.errors, "by_qtype": dict(sorted(by_type.items()))}
    return out


def run_arm(arm: str, budget: int, seed: int, args: argparse.Namespace, lines: list[dict], examples: list,
            run_dir: Path) -> dict[str, Any]:
    """Train (unless ``base``) and evaluate one arm; writes and returns ``run_dir/score.json``."""
    from vpd.distill.vlm_predict import predict_modes
    from vpd.distill.vlm_train import default_recipe, train

    done = run_dir / "score.json"
    if done.is_file():
        return json.loads(done.read_text())
    t0 = time.time()
    run_dir.mkdir(parents=True, exist_ok=True)
    blind = blind_image(args.out) if arm == "blind" else None
    info: dict[str, Any] = {"arm": arm, "budget": budget, "seed": seed}
    if arm == "base":
        ckpt = args.base
    else:
        ids = sample_budget(lines, budget, seed)
        replay = replay_lines(args.base, args.replay_pretrain, seed) if args.replay_pretrain else []
        if blind is not None:
            replay = [dict(r, image=str(blind)) for r in replay]
        chosen = arm_lines(lines, arm, ids, blind=blind)
        data = write_lines(run_dir / "data", chosen + replay)
        tasks = Counter(r["task"] for r in read_lines(data))
        steps = args.steps
        if arm == "vpd-long":
            steps = equal_exposure_steps(args.steps, len(chosen) + len(replay),
                                         len(arm_lines(lines, "label", ids)) + len(replay))
        cfg = default_recipe(steps=steps, batch=args.batch, lr=args.lr, seed=seed,
                             warmup_steps=min(50, args.steps // 10), ckpt_every=steps, max_suffix=args.max_suffix,
                             grid_weight=args.grid_weight)
        res = train(data, str(args.base) if args.base else args.model, run_dir / "student", cfg, progress=False)
        ckpt = run_dir / "student"
        info.update(train_lines=dict(tasks), final_loss=res.final_loss, train_seconds=round(res.seconds, 1),
                    grid_weight=args.grid_weight, steps=steps)
    if blind is not None:
        examples = [dataclasses.replace(e, image=str(blind)) for e in examples]
    modes = ("direct", "cot") if arm in RATIONALE_ARMS else ("direct",)
    preds = predict_modes(ckpt, examples, modes=modes, batch=32)
    with (run_dir / "predictions.jsonl").open("w") as fh:
        for p in preds:
            fh.write(json.dumps(dataclasses.asdict(p)) + "\n")
    info["modes"] = _score(examples, preds, modes, args.benchmark)
    info["seconds"] = round(time.time() - t0, 1)
    done.write_text(json.dumps(info, indent=2) + "\n")
    return info


def score_teacher(path: Path, examples: Sequence, benchmark: str) -> dict[str, Any]:
    """The programs' own answers (``{id, prediction}`` lines), scored like a student's direct answers."""
    from vpd.checkers import checker_for

    preds = {}
    for line in path.read_text().splitlines():
        if line.strip():
            rec = json.loads(line)
            preds[rec.get("id") or rec.get("example_id")] = rec.get("prediction", rec.get("answer"))
    by_type: dict[str, list[int]] = {}
    correct = 0
    for e in examples:
        p = preds.get(e.id)
        ok = p is not None and checker_for(e, benchmark).check(p, e).lenient
        correct += int(ok)
        row = by_type.setdefault(e.qtype, [0, 0])
        row[0] += int(ok)
        row[1] += 1
    return {"direct": {"accuracy": correct / max(len(examples), 1), "correct": correct, "n": len(examples),
                       "answered": sum(e.id in preds for e in examples), "by_qtype": by_type}}


def _interval(results: list[dict], mode: str) -> Interval:
    vals = [r["modes"][mode]["accuracy"] for r in results if mode in r["modes"]]
    if len(vals) == 1:
        m = next(r["modes"][mode] for r in results if mode in r["modes"])
        return wilson(m["correct"], m["n"])
    return t_interval(vals)


def summarise(all_results: dict[tuple[int, str], list[dict]], budgets: Sequence[int]) -> dict[str, Any]:
    """Means and CIs per (budget, arm, mode); paired VPD - label differences per budget."""
    rows, diffs = [], []
    for (budget, arm), results in sorted(all_results.items(), key=lambda kv: (kv[0][0], ALL_ARMS.index(kv[0][1]))):
        for mode in ("direct", "cot"):
            if not any(mode in r["modes"] for r in results):
                continue
            ci = _interval(results, mode)
            qt: dict[str, list[float]] = {}
            for r in results:
                for t, (c, n) in r["modes"][mode]["by_qtype"].items():
                    qt.setdefault(t, []).append(c / max(n, 1))
            rows.append({"budget": budget, "arm": arm, "mode": mode, "seeds": len(results), **ci.to_dict(),
                         "text": ci.pct(), "by_qtype": {t: sum(v) / len(v) for t, v in sorted(qt.items())}})
    for budget in budgets:
        label = {r["seed"]: r["modes"]["direct"]["accuracy"] for r in all_results.get((budget, "label"), [])}
        for arm in RATIONALE_ARMS:
            for mode in ("direct", "cot"):
                other = {r["seed"]: r["modes"][mode]["accuracy"] for r in all_results.get((budget, arm), [])
                         if mode in r["modes"]}
                seeds = sorted(set(label) & set(other))
                if len(seeds) >= 2:
                    d = paired_difference([other[s] for s in seeds], [label[s] for s in seeds])
                    diffs.append({"budget": budget, "arm": arm, "mode": mode, "vs": "label (direct)",
                                  "seeds": len(seeds), **d.to_dict(), "text": d.pct()})
    return {"rows": rows, "differences": diffs}


def markdown(summary: dict[str, Any], majority: dict[str, Any], command: str) -> str:
    out = [f"Command: `{command}`", "",
           f"Majority answer per question type (blind prior, no model): **{100 * majority['accuracy']:.1f}%** "
           f"on {majority['n']} test questions (shapes difficulty: {majority.get('difficulty', 'easy')}).", "",
           "| budget | arm | mode | seeds | accuracy % (mean ± 95% CI) |", "|---|---|---|---|---|"]
    out += [f"| {r['budget']} | {r['arm']} | {r['mode']} | {r['seeds']} | {r['text']} |" for r in summary["rows"]]
    if summary["differences"]:
        out += ["", "| budget | difference | seeds | points (mean ± 95% CI) |", "|---|---|---|---|"]
        out += [f"| {d['budget']} | {d['arm']} ({d['mode']}) − label (direct) | {d['seeds']} | {d['text']} |"
                for d in summary["differences"]]
    types = sorted({t for r in summary["rows"] for t in r["by_qtype"]})
    if types:
        out += ["", "Per question type (mean accuracy %, over seeds):", "",
                "| budget | arm | mode | " + " | ".join(types) + " |", "|---|---|---|" + "---|" * len(types)]
        out += [f"| {r['budget']} | {r['arm']} | {r['mode']} | " +
                " | ".join(f"{100 * r['by_qtype'].get(t, float('nan')):.0f}" for t in types) + " |"
                for r in summary["rows"]]
    return "\n".join(out) + "\n"


def plot(summary: dict[str, Any], majority: dict[str, Any], path: Path) -> None:
    """Left: arms at the smallest budget with 95% CIs; right: accuracy vs labelled budget."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = summary["rows"]
    budgets = sorted({r["budget"] for r in rows if r["budget"] > 0})
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.8))
    # the bar panel shows the budget with the most arms (ties: the smallest budget)
    first = max(budgets, key=lambda b: (sum(r["budget"] == b for r in rows), -b)) if budgets else 0
    sel = [r for r in rows if r["budget"] in (first, 0)]
    labels = [f"{r['arm']}\n{r['mode']}" for r in sel]
    err = [[r["mean"] - r["low"] if r["seeds"] > 1 or r["n"] > 1 else 0 for r in sel],
           [r["high"] - r["mean"] if r["seeds"] > 1 or r["n"] > 1 else 0 for r in sel]]
    err = [[100 * (v if v == v else 0) for v in side] for side in err]
    bars = axes[0].bar(labels, [100 * r["mean"] for r in sel], yerr=err, capsize=3, color="#4c72b0")
    axes[0].bar_label(bars, fmt="%.1f", fontsize=7)
    axes[0].axhline(100 * majority["accuracy"], color="#c44", ls="--", lw=1, label="majority answer")
    axes[0].set_ylabel("held-out accuracy (%)")
    axes[0].set_title(f"arms at {first} labelled questions (95% CI)")
    axes[0].tick_params(axis="x", labelsize=7)
    axes[0].legend(fontsize=7)
    for (arm, mode) in sorted({(r["arm"], r["mode"]) for r in rows if r["budget"] > 0}):
        pts = sorted((r["budget"], r) for r in rows if r["arm"] == arm and r["mode"] == mode and r["budget"] > 0)
        xs = [b for b, _ in pts]
        ys = [100 * r["mean"] for _, r in pts]
        lo = [100 * (r["mean"] - r["low"]) if r["low"] == r["low"] else 0 for _, r in pts]
        hi = [100 * (r["high"] - r["mean"]) if r["high"] == r["high"] else 0 for _, r in pts]
        axes[1].errorbar(xs, ys, yerr=[lo, hi], marker="o", capsize=3, label=f"{arm} ({mode})")
    axes[1].axhline(100 * majority["accuracy"], color="#c44", ls="--", lw=1)
    axes[1].set_xscale("log")
    axes[1].set_xticks(budgets, [str(b) for b in budgets])
    axes[1].minorticks_off()
    axes[1].set_xlabel("labelled questions")
    axes[1].set_title("data efficiency")
    axes[1].legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def build_parser() -> argparse.ArgumentParser:
    """The ablation's command line (also used by :mod:`vpd.benchmarks.device_ablation` for its arms)."""
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mixture", type=Path, required=True, help="vpd mix folder (label + rationale [+ lskd] lines)")
    ap.add_argument("--test", type=Path, required=True, help="held-out dataset folder (examples.jsonl)")
    ap.add_argument("--split", default="test", help="only test examples with this split ('' = all)")
    ap.add_argument("--base", type=Path, default=None, help="pretrained base (vpd pretrain); else --model from scratch")
    ap.add_argument("--model", default="student-s", help="preset when there is no --base")
    ap.add_argument("--benchmark", default="shapes", help="checker family for scoring")
    ap.add_argument("--arms", default="blind,base,label,vpd,vpd+lskd,teacher")
    ap.add_argument("--budgets", default="250,1000,4000", help="labelled-question budgets (comma-separated)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--one-seed-arms", default="", help="arms trained with seed 0 only (e.g. blind, to save time)")
    ap.add_argument("--teacher", type=Path, default=None, help="programs' predictions JSONL (vpd synth --no-labels)")
    ap.add_argument("--out", type=Path, default=Path("runs/ablation"))
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--max-suffix", type=int, default=160, help="cap on target tokens (answers are never cut)")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N test examples")
    ap.add_argument("--replay-pretrain", type=int, default=0,
                    help="add N of the base's pretraining records to every trained arm (needs --base)")
    ap.add_argument("--grid-weight", type=float, default=0.0,
                    help="keep the base's dense grid loss at this weight during instruction tuning (it applies to "
                         "records carrying a scene: the replayed pretraining records; needs a base with a grid head)")
    ap.add_argument("--quick", action="store_true", help="smoke run: 20 steps, one budget of 16, 1 seed, 24 questions")
    ap.add_argument("--report-only", action="store_true",
                    help="train nothing: report the finished runs under OUT/runs for these budgets, arms and "
                         "seeds (budgets may hold different seed counts)")
    return ap


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.quick:  # only what was not given explicitly
        given = set(argv if argv is not None else __import__("sys").argv[1:])
        args.steps = args.steps if "--steps" in given else 20
        args.budgets = args.budgets if "--budgets" in given else "16"
        args.seeds = args.seeds if "--seeds" in given else 1
        args.limit = args.limit or 24
    command = "python -m vpd.benchmarks.ablation " + " ".join(argv if argv is not None else __import__("sys").argv[1:])
    arms = [a.strip() for a in args.arms.split(",") if a.strip()]
    unknown = [a for a in arms if a not in ALL_ARMS]
    if unknown:
        raise SystemExit(f"unknown arms {unknown} (choose from {', '.join(ALL_ARMS)})")
    if args.replay_pretrain and args.base is None:
        raise SystemExit("--replay-pretrain needs --base (its pretraining mixture is replayed)")
    if "base" in arms and args.base is None:
        arms.remove("base")
    lines = read_lines(args.mixture)
    if "vpd+lskd" in arms and not any(r.get("task") == "lskd" for r in lines):
        print("the mixture has no lskd lines: skipping the vpd+lskd arm")
        arms.remove("vpd+lskd")
    if "teacher" in arms and args.teacher is None:
        arms.remove("teacher")
    budgets = [int(b) for b in args.budgets.split(",") if b.strip()]
    examples = held_out_examples(args.test, args.split or None, args.limit)
    args.out.mkdir(parents=True, exist_ok=True)
    majority = majority_baseline(examples, args.benchmark)
    majority["difficulty"] = held_out_difficulty(examples)
    results: dict[tuple[int, str], list[dict]] = {}
    if "teacher" in arms:
        results[(0, "teacher")] = [{"seed": 0, "modes": score_teacher(args.teacher, examples, args.benchmark)}]

    def finished_or_run(arm: str, budget: int, seed: int, run_dir: Path) -> dict[str, Any] | None:
        if args.report_only and not (run_dir / "score.json").is_file():
            return None
        return run_arm(arm, budget, seed, args, lines, examples, run_dir)

    if "base" in arms and (r := finished_or_run("base", 0, 0, args.out / "runs" / "base")) is not None:
        results[(0, "base")] = [r]
    for budget in budgets:
        one_seed = {a.strip() for a in args.one_seed_arms.split(",") if a.strip()}
        for seed in range(args.seeds):
            for arm in (a for a in arms if a not in ("base", "teacher") and (seed == 0 or a not in one_seed)):
                run_dir = args.out / "runs" / f"b{budget}" / arm / f"s{seed}"
                r = finished_or_run(arm, budget, seed, run_dir)
                if r is None:
                    continue
                results.setdefault((budget, arm), []).append(r)
                modes = ", ".join(f"{m} {100 * v['accuracy']:.1f}%" for m, v in r["modes"].items())
                print(f"budget {budget:>5} seed {seed} {arm:>9}: {modes}  ({r.get('seconds', 0):.0f}s)", flush=True)
    summary = summarise(results, budgets)
    report = {"command": command, "majority": majority, "test_examples": len(examples), **summary,
              "config": {k: str(v) for k, v in vars(args).items()}}
    (args.out / "ablation.json").write_text(json.dumps(report, indent=2) + "\n")
    md = markdown(summary, majority, command)
    (args.out / "ablation.md").write_text(md)
    plot(summary, majority, args.out / "ablation.png")
    print(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
