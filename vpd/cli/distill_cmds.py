"""`vpd rationalize`, `vpd lskd` (+ `run`, `train-critic`, `compare-critics`), `vpd mix`, `vpd export`:
distillation data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import List, Optional

import typer
from rich.console import Console
from rich.table import Table

from vpd.cli import app

console = Console()


@app.command("rationalize")
def rationalize_cmd(
    run: Path = typer.Argument(..., help="A synth run folder (reads verified.jsonl)."),
    rewriter: str = typer.Option("template", "--rewriter", help="template | words | llm"),
    llm: Optional[str] = typer.Option(None, "--llm", help="Sampler spec for --rewriter llm (default: gemma)."),
    engine: str = typer.Option("local", "--engine", help="local | ray (shards of examples as Ray tasks)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (default: start a local one)."),
    shards: Optional[int] = typer.Option(None, "--shards", help="Ray shards (default: 2 per CPU)."),
    min_agreement: float = typer.Option(0.0, "--min-agreement", min=0.0, max=1.0,
                                        help="Use each example's best-agreeing passing program; skip it if that is right on "
                                             "fewer than this share of the images asking its question (e.g. 0.8; 0: off)."),
) -> None:
    """Rewrite every verified trace into a rationale, check it, fall back to the template; writes RUN/rationales.jsonl."""
    from vpd.distill.rationalize import rationalize_run

    if engine == "ray":
        if min_agreement > 0:
            raise typer.BadParameter("--min-agreement needs --engine local", param_hint="--min-agreement")
        from vpd.ray_engine import rationalize_ray

        total = rationalize_ray(run, rewriter=rewriter, llm=llm, address=address, shards=shards)
        console.print(f"[bold]rationalize (ray, {total['shards']} shards)[/] {run}: {total.get('verified', 0)} verified "
                      f"-> {total.get('kept', 0)} kept, fallbacks {total.get('fallbacks', 0)}")
        console.print(f"wrote {Path(run) / 'rationales.jsonl'}")
        return
    if engine != "local":
        raise typer.BadParameter("--engine must be 'local' or 'ray'")
    rep = rationalize_run(run, rewriter=rewriter, llm=llm, min_agreement=min_agreement)
    console.print(f"[bold]rationalize[/] {run}: {rep.verified} verified"
                  + (f" ({rep.unlabelled} unlabelled: programs chosen by majority vote)" if rep.unlabelled else "")
                  + f" -> {rep.kept} kept rationales "
                  f"({rep.rewriter} ok {rep.rewriter_ok}, fallbacks {rep.fallbacks}, dropped {rep.dropped}"
                  + (f" of which {rep.agreement_dropped} below --min-agreement {min_agreement:g}; "
                     f"{rep.agreement_switched} from a better-agreeing program" if min_agreement else "")
                  + f", bad lines {rep.bad_lines}) in {rep.seconds:.1f}s")
    if rep.fallback_reasons:
        console.print("fallback reasons: " + ", ".join(f"{k} {v}" for k, v in sorted(rep.fallback_reasons.items())))
    console.print(f"wrote {Path(run) / 'rationales.jsonl'}")


lskd_app = typer.Typer(help="LSKD region-grounded triples: `vpd lskd --data D --out RUN` generates; "
                            "`vpd lskd train-critic RUN` trains the critic; `vpd lskd compare-critics RUN` "
                            "compares the text-only and the image-aware critic.",
                       invoke_without_command=True, no_args_is_help=False)
app.add_typer(lskd_app, name="lskd")


def _print_metrics(section: dict) -> None:
    held = section.get("heldout")
    if not held:
        return
    console.print(f"critic on held-out labelled triples: precision {held['precision']:.3f} recall {held['recall']:.3f} "
                  f"F1 {held['f1']:.3f}; accuracy of kept {held['kept_accuracy']:.3f} vs all {held['all_accuracy']:.3f}",
                  soft_wrap=True)
    t = Table(title="critic (held-out)")
    for col in ("threshold", "n", "precision", "recall", "f1", "auc", "accuracy of kept", "accuracy of all", "kept"):
        t.add_column(col)
    auc = held.get("auc")
    t.add_row(f"{held['threshold']:g}", str(held["n"]), f"{held['precision']:.3f}", f"{held['recall']:.3f}",
              f"{held['f1']:.3f}", "-" if auc is None else f"{auc:.3f}", f"{held['kept_accuracy']:.3f}",
              f"{held['all_accuracy']:.3f}", str(held["kept"]))
    console.print(t)


CRITIC_KIND_HELP = ("Critic kind: image (the default: also sees the cited regions' pixels) | text "
                    "(the triple and the tools' verbalisation only).")


def _check_kind(kind: str, hint: str) -> None:
    from vpd.distill.critic_kinds import CRITIC_KINDS

    if kind not in CRITIC_KINDS:
        raise typer.BadParameter(f"must be one of {', '.join(CRITIC_KINDS.in_order())}, not {kind!r}", param_hint=hint)


def _run_lskd(data: Path, out: Path, llm: str, tools: str, critic: Optional[Path], threshold: float,
              max_images: Optional[int], per_image: int, samples: int, engine: str = "local",
              address: Optional[str] = None, split: Optional[str] = "train", critic_kind: str = "image") -> None:
    from vpd.distill.lskd_run import LskdConfig, run_lskd

    if engine not in ("local", "ray"):
        raise typer.BadParameter("--engine must be 'local' or 'ray'")
    _check_kind(critic_kind, "--critic-kind")
    if critic is not None:
        from vpd.distill.critic_kinds import check_saved

        try:
            check_saved(critic, critic_kind)
        except (ValueError, FileNotFoundError) as exc:
            from rich.markup import escape

            console.print(f"[red]error:[/red] --critic: {escape(str(exc))}", soft_wrap=True)
            raise typer.Exit(2)
    mapper = None
    if engine == "ray":
        from vpd.ray_engine import lskd_ray_mapper

        mapper = lskd_ray_mapper(address=address)

    cfg = LskdConfig(data=str(data), out=str(out), llm=None if llm == "none" else llm, tools=tools,
                     critic=str(critic) if critic else None, critic_kind=critic_kind, threshold=threshold,
                     max_images=max_images, split=split, per_image=per_image, llm_samples=samples)
    rep = run_lskd(cfg, log=console.print, mapper=mapper)
    console.print(f"[bold]lskd[/] {rep.verbalised}/{rep.images} images verbalised; triples "
                  + ", ".join(f"{k} {v}" for k, v in sorted(rep.triples.items()))
                  + "; rejected " + (", ".join(f"{k} {v}" for k, v in sorted(rep.rejected.items())) or "0")
                  + f"; kept {rep.kept} (" + ", ".join(f"{k} {v}" for k, v in sorted(rep.kept_by_source.items())) + ")"
                  + (" [yellow]UNFILTERED: no critic scored them[/]" if rep.unfiltered
                     else f" by the {rep.critic_kind} critic at >= {threshold:g}"))
    _print_metrics(rep.critic)
    real = rep.critic.get("heldout_output_sources")
    if real:
        console.print(f"generated triples only (llm + verbaliser): accuracy of kept {real['kept_accuracy']:.3f} "
                      f"vs all {real['all_accuracy']:.3f} (n={real['n']})")
    if "error" in rep.critic:
        console.print(f"[yellow]critic: {rep.critic['error']}[/]")
    console.print(f"wrote {out / 'lskd.jsonl'} and {out / 'report.json'}")


@lskd_app.callback()
def lskd_main(
    ctx: typer.Context,
    data: Optional[Path] = typer.Option(None, "--data", help="Dataset folder (examples.jsonl + images)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Output run folder."),
    llm: str = typer.Option("gemma", "--llm", help="Sampler spec for the triple writer, or 'none'."),
    tools: str = typer.Option("shapes", "--tools", help="Tools spec for verbalisation."),
    critic: Optional[Path] = typer.Option(None, "--critic", help="A trained critic folder of --critic-kind "
                                          "(else one is trained on scene labels)."),
    critic_kind: str = typer.Option("image", "--critic-kind", help=CRITIC_KIND_HELP),
    threshold: float = typer.Option(0.8, "--threshold", help="Keep triples with critic score >= this."),
    max_images: Optional[int] = typer.Option(None, "--max-images", help="Use at most this many images."),
    split: str = typer.Option("train", "--split", help="Dataset split whose images are used ('all': every split)."),
    per_image: int = typer.Option(6, "--per-image", help="Verbaliser triples per image."),
    samples: int = typer.Option(1, "--samples", help="LLM completions per image."),
    engine: str = typer.Option("local", "--engine", help="local | ray (verbalisation and LLM triples in Ray shards)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (default: a local one)."),
) -> None:
    """Generate LSKD triples (when no sub-command is given)."""
    if ctx.invoked_subcommand is not None:
        return
    if data is None or out is None:
        console.print(ctx.get_help())
        raise typer.Exit(2)
    _run_lskd(data, out, llm, tools, critic, threshold, max_images, per_image, samples, engine, address, split,
              critic_kind)


@lskd_app.command("run")
def lskd_run_cmd(
    data: Path = typer.Option(..., "--data", help="Dataset folder (examples.jsonl + images)."),
    out: Path = typer.Option(..., "--out", help="Output run folder."),
    llm: str = typer.Option("gemma", "--llm", help="Sampler spec for the triple writer, or 'none'."),
    tools: str = typer.Option("shapes", "--tools", help="Tools spec for verbalisation."),
    critic: Optional[Path] = typer.Option(None, "--critic", help="A trained critic folder of --critic-kind."),
    critic_kind: str = typer.Option("image", "--critic-kind", help=CRITIC_KIND_HELP),
    threshold: float = typer.Option(0.8, "--threshold", help="Keep triples with critic score >= this."),
    max_images: Optional[int] = typer.Option(None, "--max-images", help="Use at most this many images."),
    split: str = typer.Option("train", "--split", help="Dataset split whose images are used ('all': every split)."),
    per_image: int = typer.Option(6, "--per-image", help="Verbaliser triples per image."),
    samples: int = typer.Option(1, "--samples", help="LLM completions per image."),
    engine: str = typer.Option("local", "--engine", help="local | ray (verbalisation and LLM triples in Ray shards)."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (default: a local one)."),
) -> None:
    """Generate LSKD triples (same as `vpd lskd --data D --out RUN`)."""
    _run_lskd(data, out, llm, tools, critic, threshold, max_images, per_image, samples, engine, address, split,
              critic_kind)


@lskd_app.command("train-critic")
def train_critic_cmd(
    run: Path = typer.Argument(..., help="An LSKD run folder (verbalisations.jsonl, lskd_all.jsonl)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Human-labelled JSONL (LSKD records with label accept/reject)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Critic folder (default RUN/critic)."),
    threshold: float = typer.Option(0.8, "--threshold"),
    test_frac: float = typer.Option(0.3, "--test-frac", help="Held-out fraction (split by image)."),
    seed: int = typer.Option(0, "--seed"),
    kind: str = typer.Option("image", "--kind", help=CRITIC_KIND_HELP),
) -> None:
    """Train the critic on labelled triples; prints and saves held-out precision/recall/F1."""
    from vpd.distill.lskd_run import train_critic_on_run

    _check_kind(kind, "--kind")
    metrics, section = train_critic_on_run(run, labels=labels, out=out, threshold=threshold, test_frac=test_frac,
                                           seed=seed, kind=kind)
    _print_metrics(section)
    console.print(f"{kind} {metrics.line()}")
    console.print(f"saved the {kind} critic to {section['path']}; metrics in {run / 'report.json'}")


@lskd_app.command("compare-critics")
def compare_critics_cmd(
    run: Path = typer.Argument(..., help="An LSKD run folder (verbalisations.jsonl, lskd_all.jsonl)."),
    labels: Optional[Path] = typer.Option(None, "--labels", help="Human-labelled JSONL (LSKD records with label "
                                          "accept/reject)."),
    student: Optional[Path] = typer.Option(None, "--student", help="Student checkpoint: add its vision-encoder "
                                           "crop embeddings."),
    out: Optional[Path] = typer.Option(None, "--out", help="Image-aware critic folder (default RUN/image_critic)."),
    threshold: float = typer.Option(0.8, "--threshold"),
    test_frac: float = typer.Option(0.3, "--test-frac", help="Held-out fraction (split by image)."),
    seed: int = typer.Option(0, "--seed"),
    no_augment: bool = typer.Option(False, "--no-augment", help="No simulated tool errors."),
) -> None:
    """Train the text-only and the image-aware critic on one split; print both on the same held-out triples."""
    from vpd.distill.critic_compare import compare_critics, format_table, summary_line

    try:
        section = compare_critics(run, labels=labels, student=student, out=out, test_frac=test_frac, seed=seed,
                                  threshold=threshold, augment=not no_augment)
    except ValueError as exc:
        from rich.markup import escape

        console.print(f"[red]error:[/red] {escape(str(exc))}", soft_wrap=True)
        raise typer.Exit(2)
    console.print(format_table(section), soft_wrap=True, markup=False)
    console.print(summary_line(section), soft_wrap=True, markup=False)


@app.command("mix")
def mix_cmd(
    runs: List[Path] = typer.Argument(..., help="Run folders (synth runs with rationales, LSKD runs)."),
    out: Path = typer.Option(..., "--out", help="Mixture folder (train.jsonl, val.jsonl, manifest.json)."),
    weights: Optional[str] = typer.Option(None, "--weights", help="e.g. 'label=1,rationale=1,lskd=0.5,RUNNAME=2'."),
    val_frac: float = typer.Option(0.1, "--val-frac", help="Fraction of images in val."),
    seed: int = typer.Option(0, "--seed"),
    shuffle_regions: bool = typer.Option(False, "--shuffle-regions", help="Renumber LSKD regions randomly "
                                         "once here (training also re-shuffles them per sample by default)."),
    lskd_format: str = typer.Option("vpd", "--lskd-format", help="LSKD targets: vpd ('{rationale} So the answer "
                                    "is {answer}.') or lskd ('Answer: {answer} Rationale: {rationale}')."),
    export: Optional[str] = typer.Option(None, "--export", help="Also export: comma list of hf,parquet,llava (into OUT/export-FMT)."),
    split: str = typer.Option("train", "--split", help="Dataset split to mix (rows of other splits are left out "
                              "and counted; 'all' keeps every split)."),
) -> None:
    """Build a VPD multitask mixture (label + rationale + LSKD), deduped, split by image."""
    from vpd.distill.exports import export as do_export
    from vpd.distill.mixture import build_mixture

    try:
        rep = build_mixture(runs, out, weights=weights, val_frac=val_frac, seed=seed,
                            shuffle_regions=shuffle_regions, lskd_format=lskd_format, split=split)
    except ValueError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2)
    t = Table(title=f"mixture {out}")
    t.add_column("split")
    for task in ("label", "rationale", "lskd"):
        t.add_column(task)
    t.add_column("images")
    for s in ("train", "val"):
        c = rep.counts.get(s, {})
        t.add_row(s, *(str(c.get(k, 0)) for k in ("label", "rationale", "lskd")), str(rep.images.get(s, 0)))
    console.print(t)
    console.print(f"duplicates dropped {rep.duplicates}, bad lines {rep.bad_lines}; dataset split "
                  f"{rep.split or 'all'}" + (" (left out from other splits: " + ", ".join(
                      f"{k} {v}" for k, v in sorted(rep.other_split.items())) + ")" if rep.other_split else ""))
    if rep.unhashed_images:
        console.print(f"[yellow]{len(rep.unhashed_images)} images could not be read to record their sha256 "
                      f"(e.g. {rep.unhashed_images[0]})[/]")
    for note in rep.notes:
        console.print(f"[yellow]{note}[/]")
    for fmt in [f.strip() for f in (export or "").split(",") if f.strip()]:
        dest = out / f"export-{fmt}"
        do_export(out, fmt, dest)
        console.print(f"exported {fmt} -> {dest}")


@app.command("export")
def export_cmd(
    ds: Path = typer.Argument(..., help="A mixture folder from `vpd mix`."),
    to: str = typer.Option(..., "--to", help="hf | parquet | llava | jsonl"),
    out: Path = typer.Option(..., "--out", help="Destination folder."),
    image_folder: Optional[Path] = typer.Option(None, "--image-folder", help="llava: write image paths relative to this."),
) -> None:
    """Export a mixture for other trainers (HF datasets / Parquet / LLaVA JSON)."""
    from vpd.distill.exports import export as do_export

    opts = {"image_folder": image_folder} if (to == "llava" and image_folder) else {}
    result = do_export(ds, to, out, **opts)
    console.print(f"exported {to} -> {out}: {json.dumps([str(p) for p in result] if isinstance(result, list) else str(result))}")
