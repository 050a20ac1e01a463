"""`vpd demo`: the pipeline end to end on the offline default."""

from __future__ import annotations

from pathlib import Path

import typer

from vpd.cli import app


@app.command("demo")
def demo(
    size: str = typer.Option("small", "--size",
                             help="tiny (smoke run, ~2 min on 2 cores) | small (~10 min) | medium | large."),
    out: Path = typer.Option(Path("runs/demo"), "--out", help="Output folder (replaced)."),
    llm: str = typer.Option("gemma", "--llm", help="Program-writing LLM (sampler spec)."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Run data → synth → rationalize → lskd → mix → train → eval → view on the shapes world."""
    from vpd.demo import SIZES, run_demo

    if size not in SIZES:
        raise typer.BadParameter(f"--size must be one of {', '.join(SIZES)}")
    run_demo(out, size=size, llm=llm, seed=seed)
