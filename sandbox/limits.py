"""OS-level isolation of a worker process (Linux).

Host side: :func:`scrubbed_env` and :func:`worker_command` (a clean interpreter: ``python -I -B
-m vpd.sandbox.worker``, started in its own session/process group with an empty temporary cwd,
which the host deletes once the worker is ready).

Worker side, at start (:func:`isolate`), in this order:

1. **network**: ``unshare(CLONE_NEWNET)`` (root) or ``unshare(CLONE_NEWUSER | CLONE_NEWNET)``
   (unprivileged user namespaces) puts the worker in an empty network namespace (no interfaces
   but a down loopback). Where neither is permitted (containers without CAP_SYS_ADMIN and with
   user namespaces disabled) the report says ``unavailable: <reason>`` and the other layers
   (no imports, no sockets reachable from the program) are what keeps the network out;
2. **privileges**: when started as root, ``setgroups([])``, ``setgid``/``setuid`` to an
   unprivileged id (one uid per pool slot, so workers cannot signal each other);
   ``PR_SET_NO_NEW_PRIVS`` and ``PR_SET_DUMPABLE=0``;
3. **rlimits**: ``RLIMIT_FSIZE=0`` (no file writes), ``RLIMIT_NOFILE`` small, ``RLIMIT_CORE=0``,
   ``RLIMIT_NPROC=0`` (no fork), ``RLIMIT_AS`` hard = ``as_hard_mb``, ``RLIMIT_CPU`` hard =
   ``cpu_hard_s`` of total CPU time (the worker is recycled long before).

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
PR_SET_DUMPABLE = 4
PR_SET_NO_NEW_PRIVS = 38
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


def _unshare_net(libc: Any) -> str:
    if not sys.platform.startswith("linux"):
        return f"unavailable: {sys.platform} has no network namespaces"
    flags = CLONE_NEWNET if os.geteuid() == 0 else (CLONE_NEWUSER | CLONE_NEWNET)
    if libc.unshare(flags) == 0:
        return "namespace"
    err = ctypes.get_errno()
    return f"unavailable: unshare failed ({os.strerror(err)})"


def _drop_privileges(uid: int, gid: int) -> str:
    if os.geteuid() != 0:
        return f"unchanged (uid {os.geteuid()}, not root)"
    os.setgroups([])
    os.setgid(gid)
    os.setuid(uid)
    if os.getuid() == 0 or os.geteuid() == 0:  # pragma: no cover - kernel refused
        raise OSError("failed to drop root privileges")
    return f"uid {uid} gid {gid}"


def _set(limit: int, soft: int, hard: int) -> None:
    cur_soft, cur_hard = resource.getrlimit(limit)
    if cur_hard != resource.RLIM_INFINITY:
        hard = min(hard, cur_hard) if hard != resource.RLIM_INFINITY else cur_hard
        soft = min(soft, hard) if soft != resource.RLIM_INFINITY else hard
    resource.setrlimit(limit, (soft, hard))


def isolate(config: dict[str, Any]) -> dict[str, str]:
    """Apply network, privilege and resource isolation to this (worker) process; return a report."""
    report: dict[str, str] = {}
    libc = _libc()
    report["network"] = _unshare_net(libc) if config.get("net", True) else "not requested"
    report["user"] = _drop_privileges(int(config.get("uid", UID_BASE)), int(config.get("gid", NOGROUP_GID)))
    libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    _set(resource.RLIMIT_CORE, 0, 0)
    _set(resource.RLIMIT_FSIZE, 0, 0)
    _set(resource.RLIMIT_NOFILE, NOFILE_LIMIT, NOFILE_LIMIT)
    try:
        _set(resource.RLIMIT_NPROC, 0, 0)
    except (ValueError, OSError):  # pragma: no cover - platform dependent
        pass
    as_hard = int(config.get("as_hard_mb", 4096)) * 1024 * 1024
    _set(resource.RLIMIT_AS, as_hard, as_hard)
    cpu_hard = int(config.get("cpu_hard_s", 3600))
    _set(resource.RLIMIT_CPU, cpu_hard, cpu_hard)
    report["limits"] = (f"as<={config.get('as_hard_mb', 4096)}MB cpu<={cpu_hard}s fsize=0 "
                        f"nofile={NOFILE_LIMIT} nproc=0 core=0")
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
