"""``python -m vpd.cli.synth_main …`` = ``vpd synth …`` (a light entry point: loads only this command)."""

from __future__ import annotations

import typer

from vpd.cli.synth import synth

if __name__ == "__main__":
    typer.run(synth)
