"""The prepared GPU ablation: the carry folder, the regenerated dataset's checks and a CPU run of the
whole script at `test` size (the same code path the device runs, with its packages blocked)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.test_ablation import _mixture

REPO = Path(__file__).resolve().parents[1]
# What the lent device does not have: the packed script must run without them.
BLOCK_DEVICE_MISSING = """
import importlib.abc, sys
class NotOnDevice(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path, target=None):
        if name.split('.')[0] in ('RestrictedPython', 'openai', 'ray'):
            raise ImportError(f'{name} is not installed on the device machine')
sys.meta_path.insert(0, NotOnDevice())
"""


def test_parallel_render_is_byte_identical(tmp_path: Path) -> None:
    from vpd.benchmarks.shapes import make_dataset

    one = make_dataset(tmp_path / "one", n=12, seed=3, per_image=2)
    two = make_dataset(tmp_path / "two", n=12, seed=3, per_image=2, workers=2)
    assert (one.scenes, one.examples, one.per_split, one.per_qtype) == (two.scenes, two.examples, two.per_split,
                                                                        two.per_qtype)
    assert (tmp_path / "one/examples.jsonl").read_bytes() == (tmp_path / "two/examples.jsonl").read_bytes()
    pngs = sorted(p.name for p in (tmp_path / "one/images").iterdir())
    assert len(pngs) == 12 and pngs == sorted(p.name for p in (tmp_path / "two/images").iterdir())
    assert all((tmp_path / "one/images" / n).read_bytes() == (tmp_path / "two/images" / n).read_bytes() for n in pngs)
    train = make_dataset(tmp_path / "train", n=12, seed=3, per_image=2, split="train", workers=2)
    assert 0 < train.scenes < 12 and set(train.per_split) == {"train"}


def test_pack_maps_the_packages_and_relativises_images(shapes_dir: Path, tmp_path: Path) -> None:
    from vpd.benchmarks.device_ablation import _package_dirs, pack

    dirs = _package_dirs(REPO)
    assert dirs["vpd.distill"] == REPO / "distill" and dirs["vpd.cli"] == REPO / "vpd" / "cli"
    assert dirs["vpd.benchmarks.perf"] == REPO / "benchmarks" / "perf"
    mix = _mixture(shapes_dir, tmp_path / "mix")
    meta = pack(shapes_dir, mix, tmp_path / "pack")
    src = tmp_path / "pack" / "src" / "vpd"
    assert (src / "distill" / "vlm_train.py").is_file() and (src / "cli" / "__init__.py").is_file()
    yamls = sorted(p.name for p in (REPO / "tools").glob("*.yaml"))
    assert yamls and sorted(p.name for p in (src / "tools").glob("*.yaml")) == yamls
    lines = [json.loads(x) for x in (tmp_path / "pack/mixture/train.jsonl").read_text().splitlines()]
    assert len(lines) == meta["mixture_lines"]["train.jsonl"] > 0
    assert all(r["image"].startswith("images/") for r in lines)
    assert len(meta["images_sha256"]) == len(list((shapes_dir / "images").glob("*.png")))
    assert 0 < meta["bytes"] < 64 * 2**20
    # a mixture that points outside the dataset cannot be regenerated there
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "train.jsonl").write_text(json.dumps(dict(lines[0], image="/elsewhere/x.png")) + "\n")
    with pytest.raises(ValueError, match="not inside the dataset"):
        pack(shapes_dir, bad, tmp_path / "pack2")


def test_regenerate_refuses_other_scenes(shapes_dir: Path, tmp_path: Path) -> None:
    from vpd.benchmarks.device_ablation import pack, regenerate

    pack(shapes_dir, _mixture(shapes_dir, tmp_path / "mix"), tmp_path / "pack")
    got = regenerate(tmp_path / "pack", tmp_path / "data", workers=2)
    assert got["pixel_identical"] == got["images"] > 0  # same machine, same renders
    meta = json.loads((tmp_path / "pack/pack.json").read_text())
    meta["generator"]["seed"] += 1  # a pack whose labels belong to other scenes
    (tmp_path / "pack/pack.json").write_text(json.dumps(meta))
    with pytest.raises(SystemExit, match="differs from the packed dataset"):
        regenerate(tmp_path / "pack", tmp_path / "other", workers=1)


@pytest.mark.slow
def test_packed_script_runs_without_the_device_missing_packages(shapes_dir: Path, tmp_path: Path) -> None:
    from vpd.benchmarks.device_ablation import pack

    pack(shapes_dir, _mixture(shapes_dir, tmp_path / "mix"), tmp_path / "pack")
    out, work = tmp_path / "OUT", tmp_path / "work"
    script = BLOCK_DEVICE_MISSING + (
        "from vpd.benchmarks.device_ablation import main\n"
        f"sys.exit(main(['run', '--pack', {str(tmp_path / 'pack')!r}, '--work', {str(work)!r}, '--out', {str(out)!r},"
        " '--model', 'test', '--pretrain-steps', '4', '--pretrain-batch', '4', '--loc-bins', '16',"
        " '--eval-scenes', '2', '--budgets', '8',"
        " '--seeds', '2', '--steps', '3', '--batch', '4', '--replay', '4', '--limit', '4', '--workers', '2',"
        " '--deadline-s', '1e9']))\n")
    # as on the device: from the repository root, whose own vpd/ folder must not shadow the packed tree (-P)
    env = dict(os.environ, PYTHONPATH=str(tmp_path / "pack" / "src"))
    proc = subprocess.run([sys.executable, "-P", "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads((out / "device_ablation.json").read_text())
    stages = report["stages"]
    assert stages["data"]["pixel_identical"] == stages["data"]["images"]
    assert stages["pretrain"]["steps"] == 4 and stages["pretrain"]["model"] == "test"
    assert {"b8/blind/s0", "b8/label/s0", "b8/vpd/s0", "b8/label/s1", "b8/vpd/s1"} <= set(stages)
    assert "b8/blind/s1" not in stages  # blind is trained once
    assert stages["done"]["arms_finished"] == 5 and stages["done"]["arms_left"] == 0
    assert set(stages["b8/vpd/s0"]["accuracy"]) == {"direct", "cot"}
    abl = json.loads((out / "ablation.json").read_text())
    n_val = sum(json.loads(x)["split"] == "val" for x in (shapes_dir / "examples.jsonl").read_text().splitlines())
    assert abl["test_examples"] == min(4, n_val) > 0 and {r["arm"] for r in abl["rows"]} == {"blind", "label", "vpd"}
    assert (out / "ablation.png").stat().st_size > 0 and (out / "pretrain.json").is_file()
    # the packed source ran, not the installed one
    probe = subprocess.run([sys.executable, "-P", "-c", "import vpd.distill; print(vpd.distill.__file__)"],
                           env=env, cwd=REPO, capture_output=True, text=True)
    assert probe.stdout.startswith(str(tmp_path / "pack" / "src"))
    # a rerun on the same (warm) machine resumes: nothing is trained again
    before = (work / "ablation/runs/b8/vpd/s0/score.json").stat().st_mtime
    proc = subprocess.run([sys.executable, "-P", "-c", script], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=1800)
    assert proc.returncode == 0 and (work / "ablation/runs/b8/vpd/s0/score.json").stat().st_mtime == before


@pytest.mark.slow
def test_student_m_pretrains_with_its_12x12_grid(shapes_dir: Path, tmp_path: Path) -> None:
    """The device's preset runs the whole pretraining path (dense grid loss on 144 cells, detection
    measurement) here first, so a device session does not find a shape error."""
    from vpd.distill.pretrain import pretrain, pretrain_config
    from vpd.distill.vlm_config import preset
    from vpd.distill.vlm_model import build_model, count_params

    cfg = preset("student-m")
    assert cfg.vision.num_patches == 144 and 5e6 < count_params(build_model(cfg)) < 15e6
    res = pretrain(shapes_dir, tmp_path / "base", pretrain_config(steps=2, batch=2, lr=1e-3), preset="student-m",
                   tasks={"caption": 1, "detect": 1}, eval_scenes=1, progress=False)
    assert res.steps == 2 and res.final_loss > 0 and res.detection["scenes"] == 1
    meta = json.loads((tmp_path / "base" / "config.json").read_text())
    assert meta["model"]["preset"] == "student-m" and meta["model"]["vision"]["image_size"] == 192
