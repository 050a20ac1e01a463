"""The `vpd` command line: help everywhere, `vpd data shapes`, and bad options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from vpd.cli import app
from vpd.datasets import read_examples

runner = CliRunner()


def test_vpd_help_runs_as_a_console_script():
    script = Path(sys.executable).parent / "vpd"
    cmd = [str(script), "--help"] if script.exists() else [
        sys.executable, "-c", "import sys; sys.argv = ['vpd', '--help']; from vpd.cli import main; main()"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "Usage" in proc.stdout and "data" in proc.stdout


def test_data_shapes_help():
    res = runner.invoke(app, ["data", "shapes", "--help"])
    assert res.exit_code == 0
    for opt in ("--n", "--seed", "--out", "--split", "--per-image"):
        assert opt in res.output


def test_data_shapes_writes_a_dataset(tmp_path):
    out = tmp_path / "d"
    res = runner.invoke(app, ["data", "shapes", "--n", "6", "--seed", "3", "--out", str(out)])
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["scenes"] == 6 and summary["examples"] == 12
    examples, bad = read_examples(out)
    assert len(examples) == 12 and not bad
    assert len(list((out / "images").glob("*.png"))) == 6


def test_data_shapes_split_filter(tmp_path):
    res = runner.invoke(app, ["data", "shapes", "--n", "20", "--seed", "0", "--split", "val", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    examples, _ = read_examples(tmp_path)
    assert examples and {e.metadata["split"] for e in examples} == {"val"}


def test_data_shapes_bad_options(tmp_path):
    res = runner.invoke(app, ["data", "shapes", "--n", "2", "--split", "dev", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "unknown split 'dev'" in res.output
    res = runner.invoke(app, ["data", "shapes", "--n", "2", "--fractions", "0.5,x", "--out", str(tmp_path)])
    assert res.exit_code != 0 and "expected three" in res.output
    res = runner.invoke(app, ["data", "shapes", "--n", "-1", "--out", str(tmp_path)])
    assert res.exit_code != 0


def test_data_shapes_preview_draws_a_contact_sheet(tmp_path):
    from PIL import Image

    res = runner.invoke(app, ["data", "shapes", "--n", "5", "--seed", "2", "--preview", "--out", str(tmp_path)])
    assert res.exit_code == 0, res.output
    sheet = Image.open(tmp_path / "preview.png")
    assert sheet.size == (320 * 4, (240 + 28) * 2)  # 5 tiles in rows of 4
