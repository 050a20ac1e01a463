"""The sandbox says which OS isolation layers it got: each report is checked against /proc, a layer
turned off is reported missing (with a warning), and ``require_isolation`` refuses to run."""

from __future__ import annotations

import ctypes
import errno
import os
import warnings

import pytest

from vpd.sandbox import Isolation, IsolationError, SandboxIsolationWarning, SandboxPool
from vpd.sandbox import limits
from vpd.sandbox.isolation import SKIP_ENV, skip_from_env
from vpd.sandbox.pool import probe_isolation


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


@pytest.fixture(scope="module")
def full_pool():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SandboxIsolationWarning)
        with SandboxPool(workers=1, timeout_s=2.0, skip_layers=()) as pool:
            pool.isolation()
            yield pool


def test_every_layer_is_reported_in_order(full_pool):
    iso = full_pool.isolation()
    assert [layer.name for layer in iso.layers] == list(limits.LAYERS)
    assert set(iso.active) | set(iso.missing) == set(limits.LAYERS)
    assert iso.to_dict()["complete"] == (not iso.missing)


def test_reports_match_proc(full_pool):
    """What the worker claims is what /proc shows (active <=> applied), layer by layer."""
    iso = full_pool.isolation()
    pid = full_pool.worker_pids()[0]
    st = _status(pid)
    assert iso.layer("no_new_privs").active == (st["NoNewPrivs"] == "1")
    assert iso.layer("user").active == (st["Uid"].split()[1] != "0" and os.geteuid() == 0)
    netns_differs = os.readlink(f"/proc/{pid}/ns/net") != os.readlink("/proc/self/ns/net")
    assert iso.layer("network").active == netns_differs


def test_a_skipped_layer_is_reported_missing_and_warned(monkeypatch):
    monkeypatch.setenv(SKIP_ENV, "no_new_privs,network")
    with pytest.warns(SandboxIsolationWarning, match="no_new_privs"):
        with SandboxPool(workers=1, timeout_s=2.0) as pool:
            iso = pool.isolation()
            pid = pool.worker_pids()[0]
            assert _status(pid)["NoNewPrivs"] == "0"  # really not applied
            assert os.readlink(f"/proc/{pid}/ns/net") == os.readlink("/proc/self/ns/net")
            assert pool.run("def execute_command(image):\n    return 7").answer == 7  # runs on
    assert set(iso.missing) >= {"no_new_privs", "network"} and not iso.complete
    assert iso.layer("network").detail.startswith("skipped")


def test_require_isolation_refuses_when_a_layer_is_off():
    with pytest.raises(IsolationError, match=r"missing: user \(skipped"):
        SandboxPool(workers=1, skip_layers=["user"], require_isolation=True)


def test_probe_refuses_and_names_the_layer(monkeypatch):
    monkeypatch.setenv(SKIP_ENV, "rlimits")
    with pytest.raises(IsolationError, match="rlimits"):
        probe_isolation(require=True)
    assert "rlimits" in probe_isolation().missing


def test_require_isolation_runs_when_complete(full_pool):
    if not full_pool.isolation().complete:
        with pytest.raises(IsolationError):
            SandboxPool(workers=1, require_isolation=True, skip_layers=())
        return
    with SandboxPool(workers=1, require_isolation=True, skip_layers=()) as pool:
        assert pool.run("def execute_command(image):\n    return 'ok'").answer == "ok"


def test_skip_env_rejects_unknown_layers():
    assert skip_from_env("all") == limits.LAYERS
    assert skip_from_env(" network , user") == ("network", "user")
    with pytest.raises(ValueError, match="netwrk"):
        skip_from_env("netwrk")


def test_hostile_or_partial_reports_count_as_missing():
    iso = Isolation.from_report({"network": {"active": True, "detail": "namespace"},
                                 "user": {"active": "yes", "detail": 3}, "evil": {"active": True}})
    assert iso.active == ("network",)
    assert iso.layer("user").detail == "not reported by the worker" and "evil" not in iso.to_dict()["layers"]
    assert Isolation.from_report("garbage").missing == limits.LAYERS


class FakeLibc:
    """Stands in for libc's prctl: fails with ``err`` or reads back ``readback``."""

    def __init__(self, *, err: int = 0, readback: int | None = None) -> None:
        self.err, self.readback = err, readback

    def prctl(self, option, *args):
        if self.err:
            ctypes.set_errno(self.err)
            return -1
        option = getattr(option, "value", option)  # called with ctypes.c_int
        return self.readback if option in (limits.PR_GET_NO_NEW_PRIVS, limits.PR_GET_DUMPABLE) else 0


def test_prctl_failure_is_reported_not_ignored():
    layer = limits._prctl_layer(FakeLibc(err=errno.EPERM), limits.PR_SET_NO_NEW_PRIVS, 1,
                                limits.PR_GET_NO_NEW_PRIVS, "no_new_privs")
    assert layer["active"] is False and os.strerror(errno.EPERM) in layer["detail"]


def test_prctl_read_back_mismatch_is_reported():
    layer = limits._prctl_layer(FakeLibc(readback=1), limits.PR_SET_DUMPABLE, 0, limits.PR_GET_DUMPABLE, "dumpable")
    assert layer == {"active": False, "detail": "unavailable: dumpable reads back 1, not 0"}
