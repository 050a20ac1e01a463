"""OS-level isolation of the workers, checked from the host through /proc (one property each)."""

from __future__ import annotations

import os

import pytest

from vpd.sandbox import SandboxPool

SECRET = "VPD_ISOLATION_SECRET"


@pytest.fixture(scope="module")
def pool():
    os.environ[SECRET] = "hunter2"
    try:
        p = SandboxPool(workers=1, timeout_s=1.0, memory_mb=256, max_memory_mb=1024)
        p.isolation()  # wait until the worker is up
    finally:
        os.environ.pop(SECRET, None)
    yield p
    p.close()


def _pid(pool: SandboxPool) -> int:
    pool.isolation()
    return pool.worker_pids()[0]


def _status(pid: int) -> dict[str, str]:
    out = {}
    for line in open(f"/proc/{pid}/status"):
        k, _, v = line.partition(":")
        out[k] = v.strip()
    return out


def _limits(pid: int) -> dict[str, tuple[str, str]]:
    out = {}
    for line in open(f"/proc/{pid}/limits").read().splitlines()[1:]:
        parts = line[:26].strip(), line[26:47].strip(), line[47:68].strip()
        out[parts[0]] = (parts[1], parts[2])
    return out


def test_environment_is_scrubbed(pool):
    env = open(f"/proc/{_pid(pool)}/environ", "rb").read().split(b"\0")
    names = {e.split(b"=", 1)[0].decode() for e in env if e}
    assert SECRET not in names and names <= {"PATH", "LANG", "LC_ALL"}


def test_privileges_dropped_when_root(pool):
    uids = _status(_pid(pool))["Uid"].split()
    if os.geteuid() == 0:
        assert uids[0] != "0" and uids[1] != "0" and uids[2] != "0"
    else:
        assert uids[1] == str(os.geteuid())


def test_network_namespace_or_reported(pool):
    layer = pool.isolation().layer("network")
    if layer.active:
        assert layer.detail == "namespace"
        assert os.readlink(f"/proc/{_pid(pool)}/ns/net") != os.readlink("/proc/self/ns/net")
    else:
        assert layer.detail.startswith("unavailable")


def test_file_size_limit_is_zero(pool):
    assert _limits(_pid(pool))["Max file size"] == ("0", "0")


def test_open_files_limit_is_small(pool):
    soft, hard = _limits(_pid(pool))["Max open files"]
    assert int(hard) <= 16


def test_address_space_limit_set(pool):
    pool.run("def execute_command(image):\n    return 1", memory_mb=256)
    soft, hard = _limits(_pid(pool))["Max address space"]
    assert int(soft) == 256 * 1024 * 1024 and int(hard) == 1024 * 1024 * 1024


def test_cpu_limit_set(pool):
    soft, _ = _limits(_pid(pool))["Max cpu time"]
    assert soft != "unlimited"


def test_no_fork_allowed(pool):
    assert _limits(_pid(pool))["Max processes"][0] == "0"


def test_runs_in_own_process_group(pool):
    pid = _pid(pool)
    assert os.getpgid(pid) == pid != os.getpgid(0)


def test_cwd_is_an_empty_deleted_temp_dir(pool):
    pid = _pid(pool)
    cwd = os.readlink(f"/proc/{pid}/cwd")
    assert cwd.startswith("/tmp/vpd-sbx-") and cwd.endswith("(deleted)")
    assert os.listdir(f"/proc/{pid}/cwd") == []


def test_protocol_pipes_are_off_stdin_stdout(pool):
    pid = _pid(pool)
    assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null" and os.readlink(f"/proc/{pid}/fd/1") == "/dev/null"


def test_worker_is_a_fresh_interpreter(pool):
    cmd = open(f"/proc/{_pid(pool)}/cmdline", "rb").read().split(b"\0")
    assert b"-I" in cmd and b"vpd.sandbox.worker" in cmd


def test_timeout_kills_and_replaces_worker(pool):
    before = _pid(pool)
    r = pool.run("def execute_command(image):\n    while True:\n        pass", timeout_s=0.5)
    assert r.status == "timeout"
    assert not os.path.exists(f"/proc/{before}") and _pid(pool) != before


def test_worker_recovers_after_timeout(pool):
    pool.run("def execute_command(image):\n    while True:\n        pass", timeout_s=0.3)
    assert pool.run("def execute_command(image):\n    return 'alive'").answer == "alive"


def test_memory_error_recycles_worker(pool):
    before = _pid(pool)
    r = pool.run("def execute_command(image):\n    x = 'a' * (10 ** 10)\n    return 1")
    assert r.status in ("error", "killed") and _pid(pool) != before
