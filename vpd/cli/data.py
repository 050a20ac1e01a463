"""`vpd data …`: dataset generators and converters."""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Optional

import typer

from vpd.cli import app

data_app = typer.Typer(help="Make datasets (the synthetic `shapes` world, …).", no_args_is_help=True)
app.add_typer(data_app, name="data")


def _fractions(text: str) -> tuple[float, float, float]:
    try:
        parts = tuple(float(p) for p in text.split(","))
    except ValueError:
        raise typer.BadParameter(f"expected three numbers like 0.8,0.1,0.1, got {text!r}") from None
    if len(parts) != 3 or any(p < 0 for p in parts) or sum(parts) <= 0:
        raise typer.BadParameter(f"expected three non-negative numbers like 0.8,0.1,0.1, got {text!r}")
    return parts  # type: ignore[return-value]


@data_app.command("shapes")
def shapes(
    out: Path = typer.Option(Path("data/shapes"), "--out", "-o", help="Output folder (images/ + examples.jsonl)."),
    n: int = typer.Option(200, "--n", min=0, help="Number of scenes (images)."),
    seed: int = typer.Option(0, "--seed", help="Random seed; scene i of a seed is always the same."),
    per_image: int = typer.Option(2, "--per-image", min=1, help="Questions per scene (distinct templates)."),
    split: str = typer.Option("all", "--split", help="Keep only this split's scenes: all, train, val or test."),
    fractions: str = typer.Option("0.8,0.1,0.1", "--fractions", help="train,val,test fractions of scenes."),
    no_overlap: bool = typer.Option(False, "--no-overlap", help="Never let objects overlap."),
    no_noise: bool = typer.Option(False, "--no-noise", help="Plain background, no pixel noise or speckles."),
    preview: bool = typer.Option(False, "--preview", help="Also draw DIR/preview.png: 12 scenes with their boxes."),
    difficulty: str = typer.Option("easy", "--difficulty",
                                   help="easy (the original world) | medium | hard: occlusion, tiny and touching "
                                        "objects, tinted light, clutter, cast shadows, blur and JPEG noise, so the "
                                        "pixel tools err. Recorded in dataset.json and every example."),
    workers: int = typer.Option(1, "--workers", min=1, help="Render in this many processes (same files as 1)."),
) -> None:
    """Generate the synthetic `shapes` world: DIR/images/*.png and DIR/examples.jsonl.

    Each line: id, image (relative path), question, answer, choices (or null), qtype, split,
    template, scene_id and scene (objects with shape, color, size and bbox: x0 y0 x1 y1 in pixels, origin top-left).
    """
    from rich.console import Console
    from rich.progress import Progress

    from vpd.benchmarks.shapes import SPLITS, make_dataset
    from vpd.benchmarks.shapes_difficulty import DIFFICULTIES
    from vpd.registry import UnknownNameError

    if split != "all" and split not in SPLITS:
        raise typer.BadParameter(f"unknown split {split!r} (use all, {', '.join(SPLITS)})", param_hint="--split")
    try:
        DIFFICULTIES.get(difficulty)
    except UnknownNameError as exc:
        raise typer.BadParameter(str(exc), param_hint="--difficulty") from None
    fr = _fractions(fractions)
    console = Console(stderr=True)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("rendering scenes", total=n)
        summary = make_dataset(out, n=n, seed=seed, per_image=per_image, split=split, fractions=fr,
                               overlap=not no_overlap, noise=not no_noise, difficulty=difficulty,
                               progress=lambda i: progress.update(task, completed=i + 1), workers=workers)
    console.print(f"wrote {summary.examples} examples from {summary.scenes} scenes to {out}/examples.jsonl")
    if preview and summary.examples:
        from vpd.benchmarks.shapes_preview import contact_sheet

        console.print(f"preview: {contact_sheet(out, out / 'preview.png')}")
    typer.echo(json.dumps(summary.to_dict()))


@data_app.command("select")
def select(
    data: Path = typer.Option(..., "--data", help="Dataset folder (examples.jsonl + images/) or a .jsonl file."),
    out: Optional[Path] = typer.Option(None, "--out", "-o", help="Write the chosen examples here (.jsonl; image "
                                                                 "paths absolute, so it can live anywhere)."),
    questions: int = typer.Option(..., "--questions", min=1, help="Number of distinct questions to keep."),
    split: Optional[str] = typer.Option(None, "--split", help="Only examples whose `split` is this (train/val/test)."),
    max_examples: Optional[int] = typer.Option(None, "--max-examples", min=1, help="Cut the chosen examples to N."),
    rank_order: bool = typer.Option(True, "--rank-order/--input-order",
                                    help="Write the examples grouped by question, most frequent first (a synth "
                                         "stopped early has sampled the best questions), or in input order."),
    coverage_at: Optional[str] = typer.Option(None, "--coverage", help="Also print how many examples the first "
                                                                       "N questions cover, e.g. 50,100,200."),
) -> None:
    """Keep the examples of the most frequent distinct questions (round-robin over question types).

    With question-level reuse `vpd synth` samples programs once per distinct question, so this bounds
    the LLM cost: pass the written .jsonl to `vpd synth --data`. Prints a JSON summary.
    """
    from vpd.datasets import read_examples, write_examples
    from vpd.question_select import coverage, in_rank_order, pick_frequent_questions, question_key

    if not data.exists():
        raise typer.BadParameter(f"no dataset at {data}", param_hint="--data")
    points: list[int] = []
    if coverage_at:
        try:
            points = [int(p) for p in coverage_at.split(",") if p.strip()]
        except ValueError:
            raise typer.BadParameter(f"expected numbers like 50,100,200, got {coverage_at!r}",
                                     param_hint="--coverage") from None
    examples, bad = read_examples(data.resolve())
    if split is not None:
        examples = [e for e in examples if e.metadata.get("split") == split]
    if not examples:
        raise typer.BadParameter(f"no examples in {data}" + (f" with split {split!r}" if split else ""),
                                 param_hint="--data")
    chosen = pick_frequent_questions(examples, questions, max_examples)
    if rank_order:
        chosen = in_rank_order(chosen)
    if out is not None:
        write_examples(chosen, out)
    per_qtype: dict[str, int] = {}
    for e in chosen:
        per_qtype[e.qtype or "-"] = per_qtype.get(e.qtype or "-", 0) + 1
    summary = {
        "input_examples": len(examples), "bad_lines": len(bad),
        "distinct_questions": len({question_key(e) for e in examples}),
        "chosen_questions": len({question_key(e) for e in chosen}), "chosen_examples": len(chosen),
        "chosen_images": len({e.image for e in chosen}), "per_qtype": dict(sorted(per_qtype.items())),
        "out": None if out is None else str(out),
    }
    if points:
        summary["coverage"] = [asdict(p) for p in coverage(examples, points)]
    typer.echo(json.dumps(summary))


@data_app.command("import")
def import_cmd(
    name: str = typer.Argument(..., help="Importer: vqav2, okvqa, gqa, aokvqa, tallyqa, ocrvqa, pope or mmbench."),
    source: Path = typer.Option(..., "--from", help="The official release file or the folder holding its files."),
    split: str = typer.Option(..., "--split", help="Split to import (e.g. train, val; pope: random/popular/adversarial)."),
    out: Path = typer.Option(..., "--out", "-o", help="Output folder: examples.jsonl, import_report.json, dataset.json."),
    images: Optional[Path] = typer.Option(None, "--images", help="Image root (default: the --from folder)."),
) -> None:
    """Convert an official dataset release into examples.jsonl, labels kept, images referenced in place.

    Every record that cannot be imported (missing image, no answer, unknown split, malformed) is
    printed as one line on stderr and listed in OUT/import_report.json; the last line on stdout is
    a JSON summary with the counts. Test splits published without answers (vqav2 test/test-dev,
    gqa test/challenge/submission, aokvqa test, mmbench test) are imported unlabelled
    ("unlabelled_split": true) for `vpd synth --no-labels`. GQA's --from may be the
    train_all_questions/ chunk folder or a quoted glob of chunks.
    """
    from vpd.benchmarks.importers import ImportSourceError, importer_names, run_import
    from vpd.registry import UnknownNameError

    if name not in importer_names():
        try:
            from vpd.benchmarks.importers import IMPORTERS

            IMPORTERS.get(name)
        except UnknownNameError as exc:
            raise typer.BadParameter(str(exc), param_hint="NAME") from None
    try:
        report = run_import(name, source, split=split, out=out, images=images,
                            on_bad=lambda b: typer.echo(b.line(), err=True))
    except ImportSourceError as exc:
        raise typer.BadParameter(str(exc), param_hint="--from/--split") from None
    typer.echo(f"imported {report.examples} examples ({report.labelled} labelled, {report.multi_answer} with "
               f"several annotator answers) to {out}/examples.jsonl; {len(report.bad)} bad record(s)"
               + (f" {report.bad_by_reason}" if report.bad else "") + f", listed in {out}/import_report.json",
               err=True)
    if report.unlabelled_split:
        typer.echo(f"unlabelled split: the {name} {split} release has no answers; {report.unlabelled} examples "
                   f"written with answer null (use them with `vpd synth --no-labels --split {split}`)", err=True)
    typer.echo(json.dumps(report.summary()))
