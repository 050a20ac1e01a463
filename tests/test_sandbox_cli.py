"""`vpd exec PROGRAM.py --image IMG [--tools] [--json]`."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from vpd.cli import app

runner = CliRunner()


def test_exec_json_on_shapes(tmp_path):
    from vpd.benchmarks.shapes import generate_scene, render_scene

    scene = generate_scene(seed=0, index=3)
    img = tmp_path / "scene.png"
    render_scene(scene).save(img)
    prog = tmp_path / "p.py"
    prog.write_text("def execute_command(image):\n    return len(ImagePatch(image).find('red object'))\n")
    res = runner.invoke(app, ["exec", str(prog), "--image", str(img), "--tools", "shapes", "--json"])
    data = json.loads(res.stdout)
    assert res.exit_code == 0 and data["answer"] == sum(o.color == "red" for o in scene.objects)
    assert data["trace"]["calls"][0]["tool"] == "detect"


def test_exec_text_output_and_exit_code(tmp_path):
    prog = tmp_path / "p.py"
    prog.write_text("import os\ndef execute_command(image):\n    return 1\n")
    res = runner.invoke(app, ["exec", str(prog)])
    assert res.exit_code == 1 and "status: rejected" in res.stdout and "Import is not allowed" in res.stdout


def test_exec_missing_program_is_clear(tmp_path):
    res = runner.invoke(app, ["exec", str(tmp_path / "nope.py")])
    assert res.exit_code == 2 and "not found" in res.output


def test_exec_missing_image_is_clear(tmp_path):
    prog = tmp_path / "p.py"
    prog.write_text("def execute_command(image):\n    return 1\n")
    res = runner.invoke(app, ["exec", str(prog), "--image", str(tmp_path / "x.png")])
    assert res.exit_code == 2 and "image file not found" in res.output
