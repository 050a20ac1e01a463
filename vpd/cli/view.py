"""`vpd view RUN`: the run viewer (a static, self-contained HTML report)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from vpd.cli import app


@app.command("view")
def view(
    run: Path = typer.Argument(..., help="Run folder (runs/<name>)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Report path (default RUN/report.html)."),
    serve_: bool = typer.Option(False, "--serve", help="Serve the report on 127.0.0.1 (for big runs)."),
    port: int = typer.Option(8765, help="Port for --serve."),
) -> None:
    """Write an offline HTML report of a run: summary, pass@k curve, examples with boxes, code, traces."""
    from vpd.view_report import serve, write_report

    if not run.is_dir():
        raise typer.BadParameter(f"run folder not found: {run}")
    path = write_report(run, out)
    typer.echo(f"report: {path}")
    if serve_:
        serve(path, port)
