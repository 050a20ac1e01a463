"""The scene-record oracle toolbox: it attributes failed candidates to tool vs logic errors, and the
verification path (`vpd synth`) can never reach it."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from vpd.benchmarks.shapes import generate_scene, render_scene
from vpd.synth_writer import Sample

RIGHT = 'def execute_command(image):\n    image_patch = ImagePatch(image)\n    return str(len(image_patch.find("object")))\n'
WRONG = ('def execute_command(image):\n    image_patch = ImagePatch(image)\n'
         '    return str(len(image_patch.find("object")) + 1)\n')
SCENES = [(7, i) for i in range(8)]


class FakeWriter:
    """Stands in for the LLM: the same two programs (one right, one off by one) for every question."""

    def sample(self, questions, k, *, seed):
        return [[Sample(raw=p, program=p) for p in (RIGHT, WRONG)][:k] for _ in questions]


def _dataset(root: Path) -> Path:
    (root / "images").mkdir(parents=True)
    with (root / "examples.jsonl").open("w") as fh:
        for seed, i in SCENES:
            scene = generate_scene(seed, i, difficulty="hard")
            render_scene(scene).save(root / "images" / f"{scene.id}.png")
            fh.write(json.dumps({"id": f"shapes-{scene.id}-q0", "image": f"images/{scene.id}.png",
                                 "question": "How many objects are there?", "answer": str(len(scene.objects)),
                                 "choices": None, "qtype": "count_simple", "split": "train",
                                 "difficulty": "hard", "scene": scene.scene_records()}) + "\n")
    return root


def _config(data: Path, out: Path):
    from vpd.synth import SynthConfig

    return SynthConfig(data=str(data), out=str(out), llm="fake", tools="shapes", k=2, workers=1, cache="memory",
                       checker="shapes", progress=False, greedy_first=False)


def test_oracle_is_no_backend_name():
    from vpd.tools import load
    from vpd.tools.backend import BACKENDS

    assert "oracle" not in BACKENDS and not any("oracle" in n for n in BACKENDS.names())
    with pytest.raises(Exception, match="oracle"):
        load("oracle")


def test_synth_path_never_imports_the_oracle(tmp_path: Path):
    """In a fresh interpreter: the whole CLI loads and a full `run_synth` verifies a run, and the
    oracle module is never imported."""
    data = _dataset(tmp_path / "data")
    script = f"""
import sys
sys.path.insert(0, {str(Path(__file__).parent)!r})
import vpd.cli  # every command module
from test_oracle_isolation import FakeWriter, _config
from vpd.synth import run_synth
from pathlib import Path
res = run_synth(_config(Path({str(data)!r}), Path({str(tmp_path / 'run')!r})), writer=FakeWriter())
assert res.report["candidates"] == {2 * len(SCENES)}, res.report["candidates"]
bad = sorted(m for m in sys.modules if m.startswith("vpd.") and ("oracle" in m or m.endswith("attribution")))
print("ORACLE_MODULES", bad)
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "ORACLE_MODULES []" in out.stdout, out.stdout


def test_attribution_splits_tool_from_logic_errors(tmp_path: Path, monkeypatch):
    from vpd.benchmarks import shapes_oracle
    from vpd.benchmarks.shapes_attribution import attribute_run
    from vpd.synth import run_synth
    from vpd.synth_report import build_report
    from vpd.tools.backends.shapes import ShapesBackend

    built = {"toolbox": 0, "host": 0}
    real_tb, real_host = shapes_oracle.OracleToolbox.__init__, shapes_oracle.OracleHost.__init__

    def tb_init(self, *a, **k):
        built["toolbox"] += 1
        real_tb(self, *a, **k)

    def host_init(self, *a, **k):
        built["host"] += 1
        real_host(self, *a, **k)

    monkeypatch.setattr(shapes_oracle.OracleToolbox, "__init__", tb_init)
    monkeypatch.setattr(shapes_oracle.OracleHost, "__init__", host_init)

    data = _dataset(tmp_path / "data")
    run = tmp_path / "run"
    run_synth(_config(data, run), writer=FakeWriter())
    assert built == {"toolbox": 0, "host": 0}, "verification built the oracle"

    backend = ShapesBackend(cache_size=0)
    truth = [len(generate_scene(s, i, difficulty="hard").objects) for s, i in SCENES]
    seen = [backend.count(render_scene(generate_scene(s, i, difficulty="hard")), "object") for s, i in SCENES]
    tool = sum(d != t for d, t in zip(seen, truth))  # the right program fails only where the detector miscounts
    logic = sum(d + 1 != t for d, t in zip(seen, truth))  # the off-by-one program fails on the oracle too
    assert tool > 0, "these hard scenes should include a detector miscount"

    summary = attribute_run(run, workers=1)
    assert built["toolbox"] == summary["reruns"] > 0 and built["host"] >= 1
    hard = summary["by_difficulty"]["hard"]
    assert (hard["tool"], hard["logic"], hard["no_program"], hard["infrastructure"]) == (tool, logic, 0, 0)
    assert hard["failed"] == tool + logic and hard["candidates"] == 2 * len(SCENES)
    assert hard["tool_share"] == round(tool / (tool + logic), 4)
    # the analysis changed no verdict, and the report shows it beside the run's numbers
    report = build_report(run)
    assert report["failure_attribution"]["by_difficulty"]["hard"]["tool"] == tool
    assert report["failure_categories"].get("wrong_answer", 0) == tool + logic
    # the command line gives the same split
    from typer.testing import CliRunner

    from vpd.cli import app

    res = CliRunner().invoke(app, ["synth-attribute", str(run), "--workers", "1"])
    assert res.exit_code == 0, res.output
    printed = json.loads(res.output.strip().splitlines()[-1])
    assert printed["by_difficulty"]["hard"]["tool"] == tool and printed["by_difficulty"]["hard"]["logic"] == logic


def test_oracle_sees_objects_in_patches():
    from vpd.benchmarks.shapes_oracle import objects_in

    scene = [{"shape": "cube", "color": "red", "size": "large", "bbox": [10, 10, 50, 50]},
             {"shape": "sphere", "color": "blue", "size": "small", "bbox": [45, 45, 65, 65]}]
    assert [o.color for o in objects_in(scene, (0, 0, 100, 100))] == ["red", "blue"]
    inside = objects_in(scene, (0, 0, 50, 50))  # the sphere has 1/16 of its box there: not seen
    assert [(o.color, o.box) for o in inside] == [("red", (10, 10, 50, 50))]
    half = objects_in(scene, (30, 0, 100, 100))  # half the cube, all of the sphere, in patch pixels
    assert [(o.color, o.box) for o in half] == [("red", (0, 10, 20, 50)), ("blue", (15, 45, 35, 65))]
