"""`vpd data …`: dataset generators and converters."""

from __future__ import annotations

import typer

from vpd.cli import app

data_app = typer.Typer(help="Make datasets (the synthetic `shapes` world, …).", no_args_is_help=True)
app.add_typer(data_app, name="data")
