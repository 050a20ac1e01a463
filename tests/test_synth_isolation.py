"""`vpd synth` records the sandbox's OS isolation layers in the run manifest and, with
--require-isolation, refuses to run when one is off (turned off here with VPD_SANDBOX_SKIP)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

from typer.testing import CliRunner

from vpd.cli import app
from vpd.datasets import read_examples
from vpd.sandbox import SandboxIsolationWarning
from vpd.sandbox.isolation import SKIP_ENV
from vpd.sandbox.limits import LAYERS
from vpd.synth import SynthConfig, run_synth

runner = CliRunner()


def _replay(data: Path, out: Path) -> Path:
    examples, _ = read_examples(data)
    with out.open("w") as fh:
        for q, ch in dict.fromkeys((ex.question, ex.choices) for ex in examples):
            fh.write(json.dumps({"question": q, "choices": ch,
                                 "completions": ["    return bool_to_yesno(image_patch.exists('object'))\n"]}) + "\n")
    return out


def _cfg(shapes_dir: Path, tmp_path: Path, **kw) -> SynthConfig:
    rec = _replay(shapes_dir, tmp_path / "rec.jsonl")
    return SynthConfig(data=str(shapes_dir), out=str(tmp_path / "run"), llm=f"replay:{rec}", k=1, limit=2,
                       fewshot="fixed", cache="memory", timeout_s=2.0, workers=1, progress=False, **kw)


def test_manifest_names_the_active_layers(shapes_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(SKIP_ENV, "network")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run_synth(_cfg(shapes_dir, tmp_path))
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    iso = manifest["isolation"]
    assert sorted(iso["layers"]) == sorted(LAYERS)
    assert "network" in iso["missing"] and iso["complete"] is False
    assert iso["layers"]["network"]["detail"].startswith("skipped")
    assert set(iso["active"]) | set(iso["missing"]) == set(LAYERS)
    assert manifest["sessions"][-1]["isolation"] == iso  # every session records its own
    assert any(issubclass(w.category, SandboxIsolationWarning) and "network" in str(w.message) for w in caught)


def test_require_isolation_refuses_before_writing_anything(shapes_dir, tmp_path, monkeypatch):
    monkeypatch.setenv(SKIP_ENV, "user")
    rec = _replay(shapes_dir, tmp_path / "rec.jsonl")
    out = tmp_path / "run"
    res = runner.invoke(app, ["synth", "--data", str(shapes_dir), "--out", str(out), "--llm", f"replay:{rec}",
                              "--k", "1", "--limit", "2", "--fewshot", "fixed", "--cache", "memory", "--quiet",
                              "--require-isolation"])
    assert res.exit_code == 2, res.output
    assert "isolation required but missing: user" in res.output
    assert not out.exists()


def test_require_isolation_in_the_python_api(shapes_dir, tmp_path, monkeypatch):
    import pytest

    from vpd.sandbox import IsolationError

    monkeypatch.setenv(SKIP_ENV, "not_dumpable")
    with pytest.raises(IsolationError, match="not_dumpable"):
        run_synth(_cfg(shapes_dir, tmp_path, require_isolation=True))
    from vpd.runs import read_candidates

    assert list(read_candidates(tmp_path / "run")) == []  # no program ran
