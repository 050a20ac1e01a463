"""The ``vpd`` command line. Each command group lives in its own module under ``vpd.cli``.

A module registers its commands on :data:`app` at import; :data:`COMMAND_MODULES` lists them in
the order ``vpd --help`` shows them.
"""

from __future__ import annotations

import importlib
import importlib.util

import typer

app = typer.Typer(
    name="vpd",
    help="Visual program distillation: sample programs, verify them in a sandbox, distil rationales into a VLM.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

COMMAND_MODULES = ("demo", "data", "tools_cmd", "exec_cmd", "synth", "synth_attribute", "llm_cmd", "distill_cmds", "pretrain", "train", "eval_cmd", "view", "scale")


def _load_commands() -> None:
    for name in COMMAND_MODULES:
        full = f"{__name__}.{name}"
        if importlib.util.find_spec(full) is None:
            continue  # not built yet
        importlib.import_module(full)


_load_commands()


def main() -> None:
    app()
