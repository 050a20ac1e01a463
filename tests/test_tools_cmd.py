"""`vpd tools list / run / make-tiny` and the shipped GPU tools config."""

from __future__ import annotations

import json
from pathlib import Path

import yaml
from typer.testing import CliRunner

import vpd.tools.backends  # noqa: F401
from vpd.cli import app
from vpd.tools.backend import BACKENDS
from vpd.tools.specs import TOOLS

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[1]


def test_tools_list_json_names_backends_needs_and_weights(tmp_path):
    res = runner.invoke(app, ["tools", "list", "--json"])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    by = {b["name"]: b for b in data["backends"]}
    for name in ("groundingdino", "ultralytics", "yolo_world", "owlv2", "owlvit", "blip", "blip2", "paligemma",
                 "siglip", "clip", "depth_anything", "dpt", "rapidocr", "easyocr", "nudenet", "openai_vlm", "vpd_vlm"):
        assert name in by and by[name]["needs"]
    assert by["nudenet"]["weights"].startswith("found:")
    assert by["rapidocr"]["weights"].startswith("found:")
    assert by["owlv2"]["weights"] == "missing: model_path=/models/owlv2-base-patch16-ensemble"
    assert by["openai_vlm"]["weights"].startswith("remote:")
    assert "detect" in by["owlv2"]["batchable"] and by["owlv2"]["max_batch"] > 1
    tools = {t["name"]: t for t in data["tools"]}
    assert set(tools) == set(TOOLS.names()) and "groundingdino" in tools["detect"]["backends"]
    # weights found when the config points at them
    (tmp_path / "owl").mkdir()
    cfg = tmp_path / "t.yaml"
    cfg.write_text(yaml.safe_dump({"detect": {"backend": "owlv2", "model_path": str(tmp_path / "owl")}}))
    res = runner.invoke(app, ["tools", "list", "--json", "--tools", str(cfg)])
    by = {b["name"]: b for b in json.loads(res.output)["backends"]}
    assert by["owlv2"]["weights"] == f"found: {tmp_path / 'owl'}"


def test_tools_list_table():
    res = runner.invoke(app, ["tools", "list"])
    assert res.exit_code == 0 and "Backends" in res.output and "groundingdino" in res.output


def test_tools_run_prints_json_and_draws(shapes_dir, tmp_path):
    from vpd.datasets import read_examples

    ex = read_examples(shapes_dir)[0][0]
    out = tmp_path / "boxes.png"
    res = runner.invoke(app, ["tools", "run", "detect", "--image", ex.image, "--arg", "query=object",
                              "--tools", "shapes", "--draw", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads(res.stdout.splitlines()[0])
    assert rows and all(len(r) == 6 for r in rows) and out.is_file()
    res = runner.invoke(app, ["tools", "run", "best_text_match", "--image", ex.image,
                              "--arg", 'options=["red cube", "blue sphere"]', "--tools", "shapes"])
    assert res.exit_code == 0 and json.loads(res.stdout.splitlines()[0]) in ("red cube", "blue sphere")


def test_gpu_tools_yaml_is_valid_and_documented():
    path = ROOT / "tools" / "gpu_tools.yaml"
    text = path.read_text()
    cfg = yaml.safe_load(text)
    assert text.count("#") > 10  # documented
    for tool, value in cfg.items():
        if tool == "backends":
            for name in value:
                assert name in BACKENDS
            continue
        if tool == "default":
            continue
        name = value["backend"] if isinstance(value, dict) else value
        assert tool in TOOLS and name in BACKENDS and tool in BACKENDS.get(name).provides
    paths = [v for opts in cfg.get("backends", {}).values() for k, v in (opts or {}).items()
             if isinstance(v, str) and v.startswith("/models/")]
    assert len(paths) >= 6
