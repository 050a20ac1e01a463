"""`vpd eval` (score a benchmark), `vpd adapt` (content-moderation adaptation), `vpd data memes`."""

from __future__ import annotations

import inspect
import json
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from vpd.cli import app
from vpd.cli.data import data_app

console = Console()

_EVAL_HELP = """Score a benchmark with its official rules; writes OUT/results.json, results.md, per_item.jsonl.

Predictions come from exactly one of --predictions F (JSONL), --model CKPT (a student checkpoint)
or --programs LLM+TOOLS (programs as the solver, e.g. `gemma+shapes`).

A predictions file has one JSON line per question: the benchmark's id field (`index` for mmbench,
`question_id` for tallyqa, pope and aokvqa, `id` for hateful_memes, moderation and shapes),
`prediction` (raw model text) and, where a metric needs it, `score` (e.g. P(hateful) for AUROC).
MMBench CircularEval: one line per rotation with `rotation` (0..n-1, options shifted left by that
many places). POPE: --data is one split file or a folder of them (then each line needs `split`).
Questions without a prediction are scored wrong and listed; unknown ids are listed and ignored
(--strict makes both an error). Scoring from predictions never opens an image.

`vpd eval --compare A B` prints two results (files or folders) side by side."""


def _make_benchmark(name: str, **options: Any) -> Any:
    from vpd.benchmarks.registry import BENCHMARKS

    cls = BENCHMARKS.get(name)
    params = inspect.signature(cls.__init__).parameters
    return cls(**{k: v for k, v in options.items() if k in params and v is not None})


@app.command("eval", help=_EVAL_HELP)
def eval_cmd(
    benchmark: Optional[str] = typer.Option(
        None, "--benchmark", "-b",
        help="A registered benchmark: mmbench | tallyqa | pope | aokvqa | vqav2 | okvqa | gqa | hateful_memes | "
             "moderation | shapes"),
    data: Optional[Path] = typer.Option(None, "--data", help="The benchmark's data file or folder (official format)."),
    predictions: Optional[Path] = typer.Option(None, "--predictions", help="Predictions JSONL to score."),
    model: Optional[Path] = typer.Option(None, "--model", help="Student checkpoint folder to run."),
    mode: str = typer.Option("direct", "--mode", help="--model: direct (answer prompt) or cot (rationale, "
                             "then the answer parsed from its last sentence)."),
    programs: Optional[str] = typer.Option(None, "--programs", help="LLM+TOOLS: programs as the solver, e.g. gemma+shapes."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output folder (default runs/eval-<benchmark>)."),
    compare: Optional[tuple[Path, Path]] = typer.Option(None, "--compare", help="Two results.json files (or folders) to compare."),
    strict: bool = typer.Option(False, "--strict", help="Missing or unknown prediction ids are an error."),
    split: Optional[str] = typer.Option(None, "--split", help="shapes: only this split (train/val/test; 'all': every "
                                        "split). Default: the evaluation split, test (val where the data has no test)."),
    allow_overlap: bool = typer.Option(False, "--allow-overlap", help="--model: score even when evaluated images are "
                                       "the student's training images (same sha256), with a warning."),
    images: Optional[Path] = typer.Option(None, "--images", help="Image root (pope, tallyqa, aokvqa) when running a solver."),
    circular: bool = typer.Option(True, "--circular/--no-circular", help="mmbench: CircularEval (default) or one rotation."),
    llm_match: Optional[str] = typer.Option(None, "--llm-match", help="mmbench: sampler spec for the LLM answer-matching fallback."),
    setting: Optional[str] = typer.Option(None, "--setting", help="aokvqa: prompt setting when running a solver (mc | da)."),
    k: int = typer.Option(1, "--k", help="--programs: programs sampled per question (majority answer)."),
    submission: bool = typer.Option(False, "--submission", help="mmbench: also write the submission TSV."),
) -> None:
    from vpd import evaluation as ev

    if compare:
        _print_compare(*compare)
        return
    if not benchmark or data is None:
        raise typer.BadParameter("--benchmark and --data are required (or use --compare A B)")
    given = [x is not None for x in (predictions, model, programs)]
    if sum(given) != 1:
        raise typer.BadParameter("give exactly one of --predictions, --model, --programs")
    sampler = None
    if llm_match:
        from vpd.programs.sampler_base import load_sampler

        sampler = load_sampler(llm_match)
    split = _eval_split(benchmark, data, split)
    bench = _make_benchmark(benchmark, split=split, image_root=images, circular=circular, sampler=sampler,
                            setting=setting)
    out = out or Path("runs") / f"eval-{benchmark}"
    out.mkdir(parents=True, exist_ok=True)
    if predictions is not None:
        rec = ev.evaluate_predictions(bench, data, predictions, strict=strict)
        pred_path = predictions
    elif model is not None:
        if mode not in ("direct", "cot"):
            raise typer.BadParameter(f"--mode must be direct or cot, got {mode!r}")
        from vpd.distill.image_overlap import TrainingOverlapError

        try:
            rec = ev.evaluate_model(bench, data, model, out, strict=strict, mode=mode, allow_overlap=allow_overlap)
        except TrainingOverlapError as exc:
            console.print(f"[red]vpd eval: {exc}[/red]", soft_wrap=True)
            raise typer.Exit(2)
        pred_path = out / "predictions.jsonl"
    else:
        llm, sep, tools = str(programs).rpartition("+")
        if not sep or not llm or not tools:
            raise typer.BadParameter("--programs takes LLM+TOOLS, e.g. gemma+shapes")
        rec = ev.evaluate_programs(bench, data, llm, tools, out, k=k, strict=strict)
        pred_path = out / "predictions.jsonl"
    path = ev.write_results(rec, out)
    if submission and hasattr(bench, "write_submission"):
        items = bench.load(data)
        preds, _ = bench.read_predictions(pred_path)
        sub = bench.write_submission(items, preds, out / "submission.tsv")
        console.print(f"submission: {sub}")
    _print_results(rec.to_dict())
    if rec.source.get("kind") == "model":
        src = rec.source
        console.print(f"model {src.get('model')}: id {src.get('model_id')} (config {src.get('config_hash')}, "
                      f"weights {src.get('weights_hash')}, step {src.get('model_step')})")
    console.print(f"wrote {path} and {out / 'results.md'}")


def _eval_split(benchmark: str, data: Path, split: Optional[str]) -> Optional[str]:
    """The split to score: as given ('all' = every split), else for a benchmark that takes a split
    the data's evaluation split (:func:`vpd.splits.default_eval_split`: test, else val)."""
    from vpd.benchmarks.registry import BENCHMARKS
    from vpd.splits import default_eval_split, normalize_split

    if split is not None:
        return normalize_split(split)
    if "split" not in inspect.signature(BENCHMARKS.get(benchmark).__init__).parameters:
        return None
    chosen = default_eval_split(data)
    if chosen is not None:
        console.print(f"evaluating split {chosen!r} (the default evaluation split; --split all for every split)")
    return chosen


def _print_results(d: dict) -> None:
    t = Table(title=f"{d['benchmark']} ({d['scorer_version']})")
    t.add_column("metric")
    t.add_column("value", justify="right")
    for k, v in d["metrics"].items():
        t.add_row(k, "–" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v))
    console.print(t)
    for kind, table in (d.get("slices") or {}).items():
        st = Table(title=f"by {kind}")
        cols: list[str] = []
        for row in table.values():
            cols += [c for c in row if c not in cols]
        st.add_column(kind)
        for c in cols:
            st.add_column(c, justify="right")
        for name, row in table.items():
            st.add_row(name, *("–" if row.get(c) is None else f"{row[c]:.4f}" if isinstance(row.get(c), float)
                               else str(row.get(c)) for c in cols))
        console.print(st)
    console.print("counts: " + ", ".join(f"{k}={v}" for k, v in d.get("counts", {}).items()))
    for n in d.get("notes") or []:
        console.print(f"[yellow]note:[/] {n}")


def _print_compare(a: Path, b: Path) -> None:
    from vpd.evaluation import compare_results

    notes, rows = compare_results(a, b)
    t = Table(title="compare")
    for col in ("", str(a), str(b), "B - A"):
        t.add_column(col, justify="left" if not col else "right")
    for r in rows:
        t.add_row(*r)
    console.print(t)
    for n in notes:
        console.print(f"[yellow]note:[/] {n}")


_ADAPT_HELP = """Adapt to a written moderation policy from a few hundred labelled memes.

Programs over moderation tools (ocr, nudity, vqa, llm_query) are sampled and verified against the
labels; the verified traces become rationales; a label-only and a rationale-trained student are
trained; AUROC/accuracy on the test memes is reported for (a) programs alone, (b) the label-only
student and (c) the rationale-trained student. --data is a Hateful-Memes-format folder
(train.jsonl with labels, test.jsonl, img/), e.g. from `vpd data memes`. Writes OUT/adapt_report.md
and adapt_report.json (+ every stage's folder); each AUROC has a DeLong 95% CI. --init BASE: every
student starts from a `vpd pretrain` base (as `vpd train --init`; the base fixes the architecture).
--smoke: the smoke training recipe and <= 8 test memes (a couple of minutes)."""


@app.command("adapt", help=_ADAPT_HELP)
def adapt_cmd(
    policy: Path = typer.Option(..., "--policy", help="The written policy (Markdown/text)."),
    data: Path = typer.Option(..., "--data", help="Hateful-Memes-format folder: train.jsonl (labels), test.jsonl, img/."),
    out: Path = typer.Option(..., "--out", help="Run folder."),
    max_labels: int = typer.Option(300, "--max-labels", help="Use at most this many labelled training memes."),
    max_test: Optional[int] = typer.Option(None, "--max-test", help="Use at most this many test memes (default all)."),
    llm: str = typer.Option("gemma", "--llm", help="Program-writing LLM (sampler spec); also answers llm_query "
                            "when the tools use the `llm` backend."),
    tools: Optional[str] = typer.Option(None, "--tools", help="Toolbox spec (default "
                                        "shapes,ocr=rapidocr,nudity=nudenet,llm_query=llm)."),
    k: int = typer.Option(4, "--k", help="Programs sampled per question."),
    steps: int = typer.Option(300, "--steps", help="Student training steps (ignored with --smoke)."),
    preset: Optional[str] = typer.Option(None, "--preset", help="Student model preset (default tiny; with --init "
                                         "the base's, and another preset is refused)."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start every student from this pretrained base "
                                        "(`vpd pretrain --out BASE`; its tokenizer and architecture are kept)."),
    workers: int = typer.Option(2, "--workers", help="Sandbox worker processes."),
    max_tokens: int = typer.Option(256, "--max-tokens", help="Program-writer completion length (tokens)."),
    smoke: bool = typer.Option(False, "--smoke", help="Smoke mode: smoke training recipe, <= 8 test memes."),
    resume: bool = typer.Option(False, "--resume", help="Keep the finished part of OUT's synth run (same settings)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    from vpd.adapt import DEFAULT_TOOLS, AdaptConfig, run_adapt
    from vpd.adapt_init import BaseFolderError, init_line

    cfg = AdaptConfig(policy=str(policy), data=str(data), out=str(out), max_labels=max_labels, llm=llm,
                      tools=tools or DEFAULT_TOOLS, k=k, steps=steps, preset=preset, init=init, seed=seed,
                      max_test=max_test, smoke=smoke, workers=workers, max_tokens=max_tokens,
                      resume=resume)
    try:
        report = run_adapt(cfg, console=console)
    except BaseFolderError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2)
    t = Table(title=f"vpd adapt: {Path(data).name} ({report['n_train_labels']} labels, test n={report['n_test']})")
    for c in ("system", "AUROC", "95% CI", "accuracy"):
        t.add_column(c, justify="left" if c == "system" else "right")
    for row in report["rows"]:
        ci = row.get("auroc_ci")
        t.add_row(row["system"], "–" if row["auroc"] is None else f"{row['auroc']:.3f}",
                  "–" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]", f"{row['accuracy']:.3f}")
    console.print(t)
    console.print(init_line(report["init"], report["student_preset"]))
    console.print(f"verified rationales: {report['rationales']}")
    console.print(f"wrote {Path(out) / 'adapt_report.json'} and {Path(out) / 'adapt_report.md'}")


@data_app.command("memes")
def data_memes(
    n: int = typer.Option(300, "--n", help="Number of memes."),
    seed: int = typer.Option(0, "--seed"),
    out: Path = typer.Option(Path("data/memes"), "--out"),
) -> None:
    """Synthetic moderation memes (caption over a shapes scene) in Hateful Memes format + policy.md."""
    from rich.progress import Progress

    from vpd.benchmarks.moderation import make_memes

    with Progress(console=console, transient=True) as prog:
        task = prog.add_task("memes", total=n)
        summary = make_memes(out, n, seed, progress=lambda i: prog.update(task, completed=i + 1))
    console.print(json.dumps(summary, indent=1))
    console.print(f"wrote {out}/{{train,dev,test}}.jsonl, img/, policy.md")
