"""The VPD ablation in miniature: a ``tiny`` student trained on label + rationale (VPD) vs
label-only, on the same examples with the same steps, batch and seed; held-out answer accuracy of
both and of the untrained model.

    python -m vpd.benchmarks.ablation --mixture DS --test D [--split test] [--steps 600] [--out OUT]

``DS`` is a ``vpd mix`` folder (``train.jsonl`` with ``label`` and ``rationale`` tasks, e.g. from
``vpd synth`` -> ``vpd rationalize`` -> ``vpd mix`` on the shapes world). The label-only arm keeps
the mixture's ``label`` lines; the VPD arm adds its ``rationale`` lines (same examples). Both
answer held-out questions with the label prompt (greedy); answers are scored with the benchmark
checker (``vpd.checkers.checker_for``). Writes ``OUT/ablation.json``, ``OUT/ablation.md`` and
``OUT/ablation.png``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from collections import defaultdict
from pathlib import Path


def split_mixture(mixture: Path, out: Path) -> dict[str, Path]:
    """Write the two arms' ``train.jsonl`` files; returns {arm: folder}."""
    lines = [json.loads(x) for x in (mixture / "train.jsonl").read_text().splitlines() if x.strip()]
    label = [r for r in lines if r.get("task") == "label"]
    rationale = [r for r in lines if r.get("task") == "rationale"]
    if not label or not rationale:
        raise SystemExit(f"{mixture}: need both label ({len(label)}) and rationale ({len(rationale)}) lines")
    arms = {"label-only": label, "vpd": label + rationale}
    folders = {}
    for arm, recs in arms.items():
        folder = out / "data" / arm
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in recs))
        folders[arm] = folder
    return folders


def score(predictions: Path, test: Path, split: str | None, benchmark: str) -> dict:
    from vpd.checkers import checker_for
    from vpd.datasets import read_examples

    examples = {e.id: e for e in read_examples(test)[0] if not split or e.metadata.get("split") == split}
    total, correct = 0, 0
    by_type: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for line in predictions.read_text().splitlines():
        rec = json.loads(line)
        ex = examples.get(rec["id"])
        if ex is None:
            continue
        ok = rec.get("prediction") is not None and checker_for(ex, benchmark).check(rec["prediction"], ex).lenient
        total += 1
        correct += int(ok)
        by_type[ex.qtype][0] += int(ok)
        by_type[ex.qtype][1] += 1
    return {"accuracy": correct / max(total, 1), "n": total,
            "by_qtype": {k: {"accuracy": c / n, "n": n} for k, (c, n) in sorted(by_type.items())}}


def _plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = list(results)
    fig, ax = plt.subplots(figsize=(5, 3.2))
    bars = ax.bar(arms, [100 * results[a]["accuracy"] for a in arms], color=["#999", "#4c72b0", "#dd8452"][:len(arms)])
    ax.bar_label(bars, fmt="%.1f")
    ax.set_ylabel("held-out accuracy (%)")
    ax.set_title("VPD ablation (tiny student, shapes world)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mixture", type=Path, required=True, help="vpd mix folder with label + rationale tasks")
    ap.add_argument("--test", type=Path, required=True, help="held-out dataset folder (examples.jsonl)")
    ap.add_argument("--split", default=None, help="only test examples with this split (e.g. test)")
    ap.add_argument("--benchmark", default="shapes", help="checker family for scoring")
    ap.add_argument("--out", type=Path, default=Path("runs/ablation"))
    ap.add_argument("--model", default="tiny")
    ap.add_argument("--steps", type=int, default=600)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--limit", type=int, default=None, help="score only the first N test examples")
    ap.add_argument("--quick", action="store_true", help="60 steps, 40 test questions (a smoke run)")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.limit = 60, args.limit or 40

    from vpd.distill.vlm_predict import predict_dataset
    from vpd.distill.vlm_train import default_recipe, train

    args.out.mkdir(parents=True, exist_ok=True)
    folders = split_mixture(args.mixture, args.out)
    base = default_recipe(steps=args.steps, batch=args.batch, lr=args.lr, seed=args.seed,
                          warmup_steps=min(50, args.steps // 10), ckpt_every=max(args.steps, 1))
    results, info = {}, {}
    for arm, steps in [("untrained", 0), ("label-only", args.steps), ("vpd", args.steps)]:
        data = folders["label-only" if arm == "untrained" else arm]
        cfg = dataclasses.replace(base, steps=steps)
        res = train(data, args.model, args.out / arm, cfg)
        pred = args.out / arm / "predictions.jsonl"
        predict_dataset(args.out / arm, args.test, pred, split=args.split, limit=args.limit)
        results[arm] = score(pred, args.test, args.split, args.benchmark)
        info[arm] = {"steps": steps, "train_lines": sum(1 for _ in (data / "train.jsonl").open()),
                     "final_loss": res.final_loss, "seconds": round(res.seconds, 1)}
        print(f"{arm:>10}: accuracy {100 * results[arm]['accuracy']:.1f}% on {results[arm]['n']} held-out questions")
    report = {"results": results, "arms": info, "config": {k: str(v) for k, v in vars(args).items()}}
    (args.out / "ablation.json").write_text(json.dumps(report, indent=2))
    rows = ["| arm | train lines | steps | held-out accuracy |", "|---|---|---|---|"]
    rows += [f"| {a} | {info[a]['train_lines']} | {info[a]['steps']} | {100 * results[a]['accuracy']:.1f}% "
             f"(n={results[a]['n']}) |" for a in results]
    (args.out / "ablation.md").write_text("\n".join(rows) + "\n")
    _plot(results, args.out / "ablation.png")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
