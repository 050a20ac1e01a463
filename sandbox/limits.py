"""OS-level isolation of a worker process (Linux).

Host side: :func:`scrubbed_env` and :func:`worker_command` (a clean interpreter: ``python -I -B
-m vpd.sandbox.worker``, started in its own session/process group with an empty temporary cwd,
which the host deletes once the worker is ready).

Worker side, at start (:func:`isolate`), in this order; each of the :data:`LAYERS` is reported as
``{"active": bool, "detail": str}`` (checked after it is applied, never assumed):

1. ``network``: ``unshare(CLONE_NEWNET)`` (root) or ``unshare(CLONE_NEWUSER | CLONE_NEWNET)``
   (unprivileged user namespaces) puts the worker in an empty network namespace (no interfaces
   but a down loopback). Where neither is permitted (containers without CAP_SYS_ADMIN and with
   user namespaces disabled) the layer is inactive and the other layers (no imports, no sockets
   reachable from the program) are what keeps the network out;
2. ``user``: when started as root, ``setgroups([])``, ``setgid``/``setuid`` to an unprivileged id
   (one uid per pool slot, so workers cannot signal each other). Inactive when the host is not
   root (the worker keeps the host's uid and can read what it can read);
3. ``no_new_privs``: ``prctl(PR_SET_NO_NEW_PRIVS, 1)``, read back with ``PR_GET_NO_NEW_PRIVS``;
4. ``not_dumpable``: ``prctl(PR_SET_DUMPABLE, 0)``, read back with ``PR_GET_DUMPABLE``;
5. ``rlimits``: ``RLIMIT_FSIZE=0`` (no file writes), ``RLIMIT_NOFILE`` small, ``RLIMIT_CORE=0``,
   ``RLIMIT_NPROC=0`` (no fork), ``RLIMIT_AS`` hard = ``as_hard_mb``, ``RLIMIT_CPU`` hard =
   ``cpu_hard_s`` of total CPU time (the worker is recycled long before); each read back.

A layer named in the init frame's ``skip`` list (the host's ``VPD_SANDBOX_SKIP``, see
:mod:`vpd.sandbox.isolation`) is not applied and reported inactive, ``skipped (…)``.

Per program (:func:`set_job_limits`): the soft ``RLIMIT_AS`` becomes ``memory_mb`` and the soft
``RLIMIT_CPU`` the CPU used so far + ``timeout_s`` + 1 s (SIGXCPU kills a runaway even if the host's
wall-clock kill were late). Not covered: seccomp syscall filtering, cgroups (memory of page cache,
pids), filesystem namespaces (files readable by the unprivileged uid stay readable to a worker
that escaped the interpreter-level guards).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import math
import os
import resource
import sys
from typing import Any

CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
PR_GET_DUMPABLE = 3
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
PR_GET_NO_NEW_PRIVS = 39
#: The isolation layers :func:`isolate` applies and reports, in order.
LAYERS = ("network", "user", "no_new_privs", "not_dumpable", "rlimits")
#: Unprivileged uid of pool slot ``i`` when the host runs as root: ``UID_BASE + i``.
UID_BASE = 64000
NOGROUP_GID = 65534
NOFILE_LIMIT = 16


def scrubbed_env() -> dict[str, str]:
    """The whole environment a worker gets: nothing from the host (no secrets, no PYTHON*)."""
    return {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "LC_ALL": "C.UTF-8"}


def worker_command(python: str | None = None) -> list[str]:
    """A clean interpreter: isolated mode (no env vars, no user site, no cwd on sys.path), no .pyc writes."""
    return [python or sys.executable, "-I", "-B", "-m", "vpd.sandbox.worker"]


def _libc() -> Any:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _layer(active: bool, detail: str) -> dict[str, Any]:
    return {"active": bool(active), "detail": str(detail)}


def _unshare_net(libc: Any) -> dict[str, Any]:
    if not sys.platform.startswith("linux"):
        return _layer(False, f"unavailable: {sys.platform} has no network namespaces")
    flags = CLONE_NEWNET if os.geteuid() == 0 else (CLONE_NEWUSER | CLONE_NEWNET)
    if libc.unshare(flags) == 0:
        return _layer(True, "namespace")
    err = ctypes.get_errno()
    return _layer(False, f"unavailable: unshare failed ({os.strerror(err)})")


def _drop_privileges(uid: int, gid: int) -> dict[str, Any]:
    if os.geteuid() != 0:
        return _layer(False, f"unchanged: host is not root, worker runs as uid {os.geteuid()}")
    try:
        os.setgroups([])
        os.setgid(gid)
        os.setuid(uid)
    except OSError as exc:
        return _layer(False, f"unavailable: {exc}")
    if os.getuid() == 0 or os.geteuid() == 0 or os.getgid() == 0 or os.getegid() == 0:
        return _layer(False, "unavailable: the kernel left a root id in place")
    return _layer(True, f"uid {uid} gid {gid}")


def _prctl(libc: Any, option: int, arg: int) -> int:
    """``prctl(option, arg, 0, 0, 0)``; raises OSError (with errno) when it returns -1."""
    ulong = ctypes.c_ulong
    ctypes.set_errno(0)
    rc = int(libc.prctl(ctypes.c_int(option), ulong(arg), ulong(0), ulong(0), ulong(0)))
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"prctl({option}) failed: {os.strerror(err)}")
    return rc


def _prctl_layer(libc: Any, set_option: int, value: int, get_option: int, what: str) -> dict[str, Any]:
    """Set a prctl flag and read it back; active only if the read-back value is ``value``."""
    if not sys.platform.startswith("linux"):
        return _layer(False, f"unavailable: {sys.platform} has no prctl")
    try:
        _prctl(libc, set_option, value)
        got = _prctl(libc, get_option, 0)
    except OSError as exc:
        return _layer(False, f"unavailable: {exc.strerror or exc}")
    if got != value:
        return _layer(False, f"unavailable: {what} reads back {got}, not {value}")
    return _layer(True, f"{what}={value}")


def _set(limit: int, soft: int, hard: int) -> None:
    cur_soft, cur_hard = resource.getrlimit(limit)
    if cur_hard != resource.RLIM_INFINITY:
        hard = min(hard, cur_hard) if hard != resource.RLIM_INFINITY else cur_hard
        soft = min(soft, hard) if soft != resource.RLIM_INFINITY else hard
    resource.setrlimit(limit, (soft, hard))


def _rlimits(as_hard_mb: int, cpu_hard_s: int) -> dict[str, Any]:
    """Set every resource limit, read each back; inactive (naming the ones that failed) otherwise."""
    as_hard = int(as_hard_mb) * 1024 * 1024
    wanted = {"core": (resource.RLIMIT_CORE, 0, 0), "fsize": (resource.RLIMIT_FSIZE, 0, 0),
              "nofile": (resource.RLIMIT_NOFILE, NOFILE_LIMIT, NOFILE_LIMIT),
              "nproc": (getattr(resource, "RLIMIT_NPROC", None), 0, 0),
              "as": (resource.RLIMIT_AS, as_hard, as_hard), "cpu": (resource.RLIMIT_CPU, cpu_hard_s, cpu_hard_s)}
    failed = []
    for name, (limit, soft, hard) in wanted.items():
        if limit is None:
            failed.append(f"{name} (not on this platform)")
            continue
        try:
            _set(limit, soft, hard)
            got_soft, got_hard = resource.getrlimit(limit)
        except (ValueError, OSError) as exc:
            failed.append(f"{name} ({exc})")
            continue
        if got_hard == resource.RLIM_INFINITY or got_hard > hard or got_soft > soft:
            failed.append(f"{name} (reads back {got_soft}/{got_hard})")
    if failed:
        return _layer(False, "unavailable: " + ", ".join(failed))
    return _layer(True, f"as<={as_hard_mb}MB cpu<={cpu_hard_s}s fsize=0 nofile={NOFILE_LIMIT} nproc=0 core=0")


def isolate(config: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Apply the :data:`LAYERS` to this (worker) process; return ``{layer: {"active", "detail"}}``.

    Never raises for a layer that cannot be applied: the report says so, and the host decides
    (warning, or refusal with ``require_isolation``)."""
    skip = {str(s) for s in config.get("skip") or ()}
    if config.get("net", True) is False:
        skip.add("network")
    libc = _libc()
    steps = {
        "network": lambda: _unshare_net(libc),
        "user": lambda: _drop_privileges(int(config.get("uid", UID_BASE)), int(config.get("gid", NOGROUP_GID))),
        "no_new_privs": lambda: _prctl_layer(libc, PR_SET_NO_NEW_PRIVS, 1, PR_GET_NO_NEW_PRIVS, "no_new_privs"),
        "not_dumpable": lambda: _prctl_layer(libc, PR_SET_DUMPABLE, 0, PR_GET_DUMPABLE, "dumpable"),
        "rlimits": lambda: _rlimits(int(config.get("as_hard_mb", 4096)), int(config.get("cpu_hard_s", 3600))),
    }
    report: dict[str, dict[str, Any]] = {}
    for name in LAYERS:  # in order: the uid drop before prctl (setuid resets the dumpable flag)
        report[name] = _layer(False, "skipped (asked by the host)") if name in skip else steps[name]()
    return report


def cpu_seconds() -> float:
    """CPU seconds (user + system) this process has used."""
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def set_job_limits(memory_mb: int, timeout_s: float) -> None:
    """Soft limits for the next program: address space ``memory_mb``, CPU ``timeout_s`` + 1 s more."""
    _, as_hard = resource.getrlimit(resource.RLIMIT_AS)
    soft = int(memory_mb) * 1024 * 1024
    if as_hard != resource.RLIM_INFINITY:
        soft = min(soft, as_hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, as_hard))
    _, cpu_hard = resource.getrlimit(resource.RLIMIT_CPU)
    cpu_soft = int(math.ceil(cpu_seconds() + float(timeout_s) + 1.0))
    if cpu_hard != resource.RLIM_INFINITY:
        cpu_soft = min(cpu_soft, cpu_hard)
    resource.setrlimit(resource.RLIMIT_CPU, (cpu_soft, cpu_hard))
