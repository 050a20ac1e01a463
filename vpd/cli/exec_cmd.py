"""`vpd exec PROGRAM.py --image IMG`: run one program in the sandbox, print result and trace."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console

from vpd.cli import app

console = Console()


@app.command("exec")
def exec_cmd(
    program: Path = typer.Argument(..., help="Python file defining `def execute_command(image):` ('-' reads stdin)."),
    image: Optional[Path] = typer.Option(None, "--image", "-i", help="Image the program runs on."),
    tools: Optional[str] = typer.Option(None, "--tools", "-t",
                                        help="Tool backends: a name ('shapes'), 'shapes,llm_query=gemma' or a YAML file. "
                                             "Default: shapes when --image is given, none otherwise."),
    timeout: float = typer.Option(5.0, "--timeout", help="Wall-clock limit in seconds (tool time included)."),
    memory_mb: int = typer.Option(512, "--memory-mb", help="Address-space limit of the worker, MB."),
    as_json: bool = typer.Option(False, "--json", help="Print the ExecutionResult as one JSON object."),
) -> None:
    """Run PROGRAM in the sandbox on IMAGE and print status, answer, prints and the tool trace.

    Exit code 0 when the program returned an answer, 1 otherwise (error, timeout, rejected, killed).
    """
    from vpd.images import ImageLoadError
    from vpd.sandbox import SandboxPool

    source = sys.stdin.read() if str(program) == "-" else _read(program)
    if image is not None and not image.is_file():
        raise typer.BadParameter(f"image file not found: {image}", param_hint="--image")
    try:
        with SandboxPool(workers=1, tools=tools, timeout_s=timeout, memory_mb=memory_mb,
                         max_memory_mb=max(2048, memory_mb)) as pool:
            result = pool.run(source, image=str(image) if image else None)
    except ImageLoadError as exc:
        raise typer.BadParameter(str(exc), param_hint="--image") from None
    if as_json:
        typer.echo(result.to_json())
    else:
        style = "green" if result.ok else "red"
        console.print(f"[bold]status[/bold]: [{style}]{result.status}[/{style}]  ({result.elapsed_s * 1000:.1f} ms)")
        typer.echo(f"answer: {json.dumps(result.answer, ensure_ascii=False)}")
        if result.error:
            typer.echo(f"error: {result.error}")
        if result.stdout:
            typer.echo("stdout:\n" + result.stdout.rstrip("\n"))
        typer.echo("trace:\n" + result.trace.text())
    raise typer.Exit(0 if result.ok else 1)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise typer.BadParameter(f"program file not found: {path}", param_hint="PROGRAM") from None
    except (UnicodeDecodeError, IsADirectoryError) as exc:
        raise typer.BadParameter(f"cannot read program {path}: {exc}", param_hint="PROGRAM") from None
