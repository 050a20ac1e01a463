"""`vpd adapt --init BASE`: every student starts from a `vpd pretrain` base (recorded in the students'
checkpoints and the report), a folder that is not a base or a conflicting --preset is refused before
any work, and each row's AUROC has a 95% CI."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vpd.adapt import AdaptConfig
from vpd.adapt_init import BASE_FILES, BaseFolderError, init_line, student_init
from vpd.benchmarks.moderation import make_memes
from vpd.cli import app


@pytest.fixture(scope="module")
def base(shapes_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny real `vpd pretrain` base: `test` preset, 3 steps, no detection measurement."""
    out = tmp_path_factory.mktemp("base") / "base"
    r = CliRunner().invoke(app, ["pretrain", "--data", str(shapes_dir), "--out", str(out), "--model", "test",
                                 "--steps", "3", "--batch", "4", "--loc-bins", "16", "--eval-scenes", "0"])
    assert r.exit_code == 0, (r.output, r.exception)
    return out


@pytest.fixture
def fake_base(tmp_path: Path) -> Path:
    """A fake base folder for the checks of :func:`student_init` (only its files are read): the
    layout of a `vpd pretrain` base with stand-in contents, no JAX training."""
    out = tmp_path / "fake_base"
    (out / "state" / "3").mkdir(parents=True)
    (out / "state" / "3" / "params").write_bytes(b"weights")
    (out / "config.json").write_text(json.dumps({"format": "vpd-student", "model": {"preset": "test"}}))
    (out / "tokenizer.json").write_text("{}")
    (out / "pretrain.json").write_text(json.dumps({"preset": "test", "steps": 3}))
    return out


def _cfg(tmp_path: Path, **kw) -> AdaptConfig:
    return AdaptConfig(policy=str(tmp_path / "policy.md"), data=str(tmp_path), out=str(tmp_path / "run"), **kw)


def test_student_init_records_the_base(fake_base: Path, tmp_path: Path) -> None:
    from vpd.evaluation import model_identity

    assert student_init(_cfg(tmp_path)) is None
    rec = student_init(_cfg(tmp_path, init=fake_base))
    assert rec["path"] == str(fake_base.resolve()) and rec["preset"] == "test" and rec["pretrain_steps"] == 3
    assert rec["model_id"] == model_identity(fake_base)["model_id"] and len(rec["model_id"]) == 12
    assert student_init(_cfg(tmp_path, init=fake_base, preset="test")) == rec  # the base's own preset is fine
    assert init_line(rec, "test").startswith(f"students initialised from {fake_base.resolve()} (`test` base")
    assert init_line(None, "tiny") == "students trained from scratch (`tiny` preset)"


@pytest.mark.parametrize("missing", BASE_FILES)
def test_a_folder_missing_a_base_file_is_refused(fake_base: Path, tmp_path: Path, missing: str) -> None:
    broken = tmp_path / "broken"
    shutil.copytree(fake_base, broken)
    target = broken / missing
    shutil.rmtree(target) if target.is_dir() else target.unlink()
    with pytest.raises(BaseFolderError, match=f"{missing} missing"):
        student_init(_cfg(tmp_path, init=broken))


def test_cli_refuses_before_any_work(fake_base: Path, tmp_path: Path) -> None:
    make_memes(tmp_path / "memes", 6, seed=1)
    not_base = tmp_path / "ckpt"
    not_base.mkdir()
    (not_base / "config.json").write_text("{}")
    args = ["adapt", "--policy", str(tmp_path / "memes" / "policy.md"), "--data", str(tmp_path / "memes"),
            "--llm", "none", "--smoke"]
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "r1"), "--init", str(not_base)])
    assert r.exit_code == 2 and "tokenizer.json" in r.output and "pretrain.json" in r.output
    assert not (tmp_path / "r1").exists()
    r = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "r2"), "--init", str(fake_base), "--preset", "tiny"])
    assert r.exit_code == 2 and "conflicts" in r.output and "`test`" in r.output
    assert not (tmp_path / "r2").exists()
    with pytest.raises(BaseFolderError, match="no such base folder"):
        student_init(_cfg(tmp_path, init=tmp_path / "nowhere"))


#: A program over the shapes detector only (no OCR: quick), replayed instead of sampled.
RED_PROGRAM = """def execute_command(image):
    image_patch = ImagePatch(image)
    if image_patch.exists("red object"):
        return "yes"
    return "no"
"""


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_adapt_with_init_end_to_end(base: Path, tmp_path: Path) -> None:
    """`vpd adapt --smoke --init BASE`: both students start from the base; the report says so; CIs."""
    from vpd.adapt import program_question
    from vpd.distill.vlm_checkpoint import read_meta

    data = tmp_path / "memes"
    make_memes(data, 24, seed=3)
    replay = tmp_path / "replay.jsonl"
    q = program_question((data / "policy.md").read_text())
    replay.write_text(json.dumps({"question": q, "choices": None, "completions": [RED_PROGRAM]}) + "\n")
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["adapt", "--policy", str(data / "policy.md"), "--data", str(data), "--out", str(out),
                                 "--llm", f"replay:{replay}", "--tools", "shapes", "--k", "1", "--max-labels", "8",
                                 "--smoke", "--workers", "1", "--init", str(base)])
    assert r.exit_code == 0, (r.output, r.exception)
    report = json.loads((out / "adapt_report.json").read_text())
    assert report["init"]["path"] == str(base.resolve()) and report["student_preset"] == "test"
    base_model = read_meta(base)["model"]
    for name in ("student_label", "student_rationale"):
        meta = read_meta(out / name)
        assert meta["init"] == str(base.resolve()) and meta["model"] == base_model
        assert (out / name / "tokenizer.json").read_text() == (base / "tokenizer.json").read_text()
        assert json.loads((out / name / "training_images.json").read_text())["from_init"] == str(base.resolve())
    md = (out / "adapt_report.md").read_text()
    assert f"students initialised from {base.resolve()} (`test` base, id {report['init']['model_id']}" in md
    assert "| system | AUROC | 95% CI | accuracy | n |" in md
    for row in report["rows"]:
        ci = row["auroc_ci"]
        assert ci is None or (0.0 <= ci[0] <= row["auroc"] <= ci[1] <= 1.0)
    assert "95% CI" in r.output and "students initialised from" in r.output
