"""`vpd eval` identifies a student by its config and the full content of its weights (cached), and
writes strict JSON: non-finite scores and metrics never become NaN/Infinity tokens."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest


def _student(folder: Path, seed: int, step: int = 3) -> Path:
    """A real student checkpoint (config.json + orbax state/<step>/) of the `test` preset."""
    from flax import nnx

    from vpd.distill import vlm_checkpoint as ckpt
    from vpd.distill.vlm_config import preset
    from vpd.distill.vlm_model import PaliGemma

    model = PaliGemma(preset("test"), rngs=nnx.Rngs(seed))
    _, params, _ = nnx.split(model, nnx.Param, ...)
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps({"format": ckpt.FORMAT, "model": model.config.to_dict(),
                                                    "lora_rank": 0}, indent=2))
    mgr = ckpt.manager(folder)
    flat = {k: np.asarray(v) for k, v in ckpt.flat_params(params).items()}
    mgr.save(step, args=ckpt.ocp.args.StandardSave({"params": flat, "opt": [], "step": step}))
    mgr.wait_until_finished()
    mgr.close()
    return folder


@pytest.fixture(scope="module")
def students(tmp_path_factory):
    root = tmp_path_factory.mktemp("students")
    return _student(root / "a", seed=0), _student(root / "b", seed=1)


@pytest.fixture(autouse=True)
def _private_hash_memo(tmp_path, monkeypatch):
    monkeypatch.setenv("VPD_CACHE_DIR", str(tmp_path / "cache"))


def test_same_config_different_weights_get_different_ids(students):
    from vpd.evaluation import model_identity

    a, b = (model_identity(s) for s in students)
    assert (students[0] / "config.json").read_bytes() == (students[1] / "config.json").read_bytes()
    assert a["config_hash"] == b["config_hash"]
    assert a["weights_hash"] != b["weights_hash"] and a["model_id"] != b["model_id"]
    assert len(a["model_id"]) == 12 and a["model_step"] == b["model_step"] == 3


def test_a_copy_has_the_same_id_and_a_changed_config_does_not(students, tmp_path):
    from vpd.evaluation import model_identity

    copy = tmp_path / "copy"
    shutil.copytree(students[0], copy)
    assert model_identity(copy)["model_id"] == model_identity(students[0])["model_id"]
    cfg = json.loads((copy / "config.json").read_text())
    (copy / "config.json").write_text(json.dumps({**cfg, "lora_rank": 4}))
    changed = model_identity(copy)
    assert changed["model_id"] != model_identity(students[0])["model_id"]
    assert changed["weights_hash"] == model_identity(students[0])["weights_hash"]


def test_only_the_latest_step_counts(students, tmp_path):
    from vpd.evaluation import identity_files

    two = tmp_path / "two"
    shutil.copytree(students[0], two)
    shutil.copytree(two / "state" / "3", two / "state" / "10")
    files = [f.relative_to(two).as_posix() for f in identity_files(two)]
    assert "config.json" in files and any(f.startswith("state/10/") for f in files)
    assert not any(f.startswith("state/3/") for f in files)


def test_weights_are_read_once_then_served_from_the_memo(students):
    from vpd.evaluation import model_identity
    from vpd.tools.backends import _weights

    _weights.forget_memo()  # earlier tests memoised in process, with another VPD_CACHE_DIR
    reads = _weights.STATS["files_read"]
    first = model_identity(students[1])
    assert _weights.STATS["files_read"] > reads  # read (into this test's on-disk memo)
    _weights.forget_memo()  # as a new process would start: the on-disk memo remains
    before = dict(_weights.STATS)
    assert model_identity(students[1]) == first
    assert _weights.STATS["files_read"] == before["files_read"]  # nothing re-read


def test_non_finite_scores_and_metrics_are_not_written_as_nan(tmp_path):
    from vpd.benchmarks.registry import Results
    from vpd.evaluation import EvalRecord, write_predictions, write_results
    from vpd.types import Example

    class FakeBench:
        """Only what write_predictions reads: nothing."""

    exs = [Example(id=f"q{i}", image="x.png", question="?", metadata={"key": {"id": f"q{i}"}}) for i in range(3)]
    answers = {"q0": {"prediction": "yes", "score": float("nan")}, "q1": {"prediction": "no", "score": 0.25},
               "q2": {"prediction": "no", "score": float("inf"), "error": "slow"}}
    path = write_predictions(FakeBench(), exs, answers, tmp_path / "preds.jsonl")
    text = path.read_text()
    assert "NaN" not in text and "Infinity" not in text
    rows = [json.loads(line) for line in text.splitlines()]
    assert "score" not in rows[0] and "non-finite score nan rejected" in rows[0]["error"]
    assert rows[1]["score"] == 0.25 and rows[2]["error"] == "slow; non-finite score inf rejected"

    res = Results(benchmark="shapes", scorer_version="t", metrics={"accuracy": 0.5, "auroc": float("nan")},
                  per_item=({"id": "q0", "score": float("-inf")},))
    out = write_results(EvalRecord(results=res, data="d", data_hash="h"), tmp_path / "eval")
    d = json.loads(out.read_text(), parse_constant=lambda c: pytest.fail(f"non-standard {c}"))
    assert d["metrics"]["auroc"] is None and d["metrics"]["accuracy"] == 0.5
    assert any("metrics.auroc was nan" in n for n in d["notes"])
    assert json.loads((tmp_path / "eval" / "per_item.jsonl").read_text())["score"] is None
