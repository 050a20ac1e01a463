"""Multi-host training through JAX's own runtime: two processes on loopback (CPU, gloo) train the
same steps as one process with two devices."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from vpd.distill.vlm_multihost import MultihostSpec, spec_from_env


def test_spec_from_env():
    assert spec_from_env({}) == MultihostSpec(mode="single")
    assert spec_from_env({"VPD_MULTIHOST": "auto"}).mode == "auto"
    s = spec_from_env({"JAX_COORDINATOR_ADDRESS": "10.0.0.1:1234", "JAX_NUM_PROCESSES": "4", "JAX_PROCESS_ID": "3"})
    assert (s.mode, s.coordinator, s.num_processes, s.process_id) == ("env", "10.0.0.1:1234", 4, 3)
    with pytest.raises(ValueError, match="JAX_PROCESS_ID"):
        spec_from_env({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2"})
    with pytest.raises(ValueError, match="must be in"):
        spec_from_env({"JAX_COORDINATOR_ADDRESS": "h:1", "JAX_NUM_PROCESSES": "2", "JAX_PROCESS_ID": "2"})


def _losses(ckpt: Path) -> dict[int, float]:
    """step -> loss (every process of a multi-host run currently appends its own identical line)."""
    rows = [json.loads(x) for x in (ckpt / "metrics.jsonl").read_text().splitlines()]
    out: dict[int, float] = {}
    for r in rows:
        assert out.setdefault(r["step"], r["loss"]) == r["loss"]  # processes agree
    return out


@pytest.mark.slow
def test_two_processes_train_like_one_process_with_two_devices(shapes_dir, tmp_path):
    from tests.test_vlm_train import write_mixture

    mix = write_mixture(shapes_dir, tmp_path / "mix")
    args = ["train", "--data", str(mix), "--model", "test", "--recipe", "smoke", "--steps", "3",
            "--mesh", "data=2", "--batch", "2"]
    base = {**os.environ, "HF_HUB_OFFLINE": "1", "JAX_PLATFORMS": "cpu"}
    single = subprocess.run([sys.executable, "-m", "vpd.cli.multihost", *args, "--out", str(tmp_path / "one")],
                            env={**base, "XLA_FLAGS": "--xla_force_host_platform_device_count=2"},
                            capture_output=True, text=True, timeout=400)
    assert single.returncode == 0, single.stderr[-3000:]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    procs = [subprocess.Popen([sys.executable, "-m", "vpd.cli.multihost", *args, "--out", str(tmp_path / "two")],
                              env={**base, "JAX_COORDINATOR_ADDRESS": f"127.0.0.1:{port}", "JAX_NUM_PROCESSES": "2",
                                   "JAX_PROCESS_ID": str(i)},
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for i in range(2)]
    outs = [p.communicate(timeout=400) for p in procs]
    for p, (_, err) in zip(procs, outs):
        assert p.returncode == 0, err[-3000:]
    assert "'process_count': 2" in outs[0][1] and "'global_devices': 2" in outs[1][1]
    one, two = _losses(tmp_path / "one"), _losses(tmp_path / "two")
    assert sorted(two) == sorted(one) == [1, 2, 3]
    assert [two[k] for k in sorted(two)] == pytest.approx([one[k] for k in sorted(one)], rel=1e-5)
