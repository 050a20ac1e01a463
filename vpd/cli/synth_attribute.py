"""`vpd synth-attribute RUN`: split a synth run's failed candidates into tool errors and logic errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from vpd.cli import app


@app.command("synth-attribute")
def synth_attribute(
    run: Path = typer.Argument(..., help="A `vpd synth` run directory on `shapes` data (examples with scene records)."),
    workers: int = typer.Option(2, "--workers", min=1, help="Sandbox worker processes for the re-runs."),
    timeout_s: Optional[float] = typer.Option(None, "--timeout", help="Per-program limit (s); default: the run's."),
    tools: Optional[str] = typer.Option(None, "--tools", help="Tools for what the oracle does not answer "
                                                              "(e.g. llm_query); default: the run's --tools."),
) -> None:
    """Re-run each failed program on an oracle toolbox built from the scene records and count, per
    difficulty, the failures perfect perception would have fixed (tool errors) and the rest (logic
    errors). Writes RUN/failure_attribution.json (shown by `vpd synth-report`); verdicts and verified
    programs are unchanged — the oracle is for this analysis only."""
    from vpd.benchmarks.shapes_attribution import attribute_run
    from vpd.synth_report import print_attribution

    if not (run / "manifest.json").is_file():
        raise typer.BadParameter(f"no synth run at {run}", param_hint="RUN")
    summary = attribute_run(run, workers=workers, timeout_s=timeout_s, tools=tools)
    print_attribution(summary)
    typer.echo(json.dumps({"by_difficulty": summary["by_difficulty"], "overall": summary["overall"]}))
