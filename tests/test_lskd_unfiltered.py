"""LSKD without labels and without a critic keeps every triple unscored: that is said on the console
and in the report, never only inside it."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from vpd.cli import app

runner = CliRunner()


def _unlabelled_copy(shapes_dir: Path, out: Path) -> Path:
    """The shapes examples without their scene records (so nothing can label a triple)."""
    out.mkdir(parents=True)
    lines = []
    for line in (shapes_dir / "examples.jsonl").read_text().splitlines():
        rec = json.loads(line)
        rec.pop("scene", None)
        rec.get("metadata", {}).pop("scene", None)
        rec["image"] = str((shapes_dir / rec["image"]).resolve())
        lines.append(json.dumps(rec))
    (out / "examples.jsonl").write_text("\n".join(lines) + "\n")
    return out


def test_unfiltered_lskd_warns_on_the_console_and_in_the_report(shapes_dir, tmp_path):
    data = _unlabelled_copy(shapes_dir, tmp_path / "data")
    out = tmp_path / "lskd"
    res = runner.invoke(app, ["lskd", "--data", str(data), "--out", str(out), "--llm", "none", "--max-images", "3"])
    assert res.exit_code == 0, res.output
    flat = " ".join(res.output.split())
    assert "warning: unfiltered LSKD: no critic" in flat and "UNFILTERED" in flat
    section = json.loads((out / "report.json").read_text())["lskd"]
    assert section["unfiltered"] is True and section["kept"] > 0
    assert len(section["warnings"]) == 1 and f"all {section['kept']} generated triples" in section["warnings"][0]
    kept = [json.loads(line) for line in (out / "lskd.jsonl").read_text().splitlines()]
    assert len(kept) == section["kept"]


def test_labelled_lskd_is_filtered_and_says_nothing(shapes_dir, tmp_path):
    from vpd.distill.lskd_run import LskdConfig, run_lskd

    logged: list[str] = []
    rep = run_lskd(LskdConfig(data=str(shapes_dir), out=str(tmp_path / "lskd"), llm=None, max_images=6),
                   show_progress=False, log=logged.append)
    assert rep.critic.get("trained_here") is True
    assert rep.unfiltered is False and rep.warnings == [] and not any("unfiltered" in m for m in logged)
