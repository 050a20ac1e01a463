"""One pre-started sandbox worker process as the pool sees it (:class:`WorkerSlot`).

A slot spawns its worker (scrubbed environment, own session and process group, a fresh empty
cwd) and sends the init frame (uid, hard limits, skipped isolation layers); it waits for the
worker's ready report and passes its isolation layers to the pool; it drives one job at a time
over the frame protocol, serving the job's tool calls through the job's host after
:func:`~vpd.sandbox.tool_request.validate_call`. On a deadline, a death or a protocol violation
it SIGKILLs the process group and starts a replacement, and it recycles a worn worker.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import tempfile
import time
from typing import TYPE_CHECKING, Any

from vpd.sandbox import limits, protocol
from vpd.sandbox.isolation import Isolation
from vpd.sandbox.result import MAX_ERROR_CHARS, WORKER_STATUSES, bounded_text, is_plain
from vpd.sandbox.tool_request import validate_call

if TYPE_CHECKING:
    from vpd.sandbox.pool import SandboxPool


class SandboxUnavailable(RuntimeError):
    """A worker process could not be started (the message includes its stderr)."""


def signal_name(returncode: int | None) -> str:
    """How a worker's return code reads in an error (``SIGKILL``, ``exit code 1``, ``still running``)."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return signal.Signals(-returncode).name
        except ValueError:
            return f"signal {-returncode}"
    return f"exit code {returncode}"


class WorkerSlot:
    """One worker process (and its replacements) owned by the pool."""

    def __init__(self, index: int, pool: "SandboxPool") -> None:
        self.index = index
        self.pool = pool
        self.as_hard_mb = pool.max_memory_mb
        self.proc: subprocess.Popen[bytes] | None = None
        self.spawn()

    # -- life cycle ---------------------------------------------------------------------------
    def spawn(self) -> None:
        self.tmpdir = tempfile.mkdtemp(prefix="vpd-sbx-")
        self.proc = subprocess.Popen(
            limits.worker_command(self.pool.python), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, cwd=self.tmpdir, env=limits.scrubbed_env(),
            start_new_session=True, close_fds=True)
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.out_fd = self.proc.stdin.fileno()
        self.reader = protocol.FrameReader(self.proc.stdout.fileno())
        self.ready = False
        self.jobs = 0
        self.pid = self.proc.pid
        self.isolation: Isolation | None = None
        init = {"type": "init", "uid": limits.UID_BASE + self.index, "gid": limits.NOGROUP_GID,
                "as_hard_mb": self.as_hard_mb, "cpu_hard_s": self.pool.cpu_hard_s,
                "skip": list(self.pool.skip_layers)}
        try:
            protocol.write_frame(self.out_fd, init, deadline=time.monotonic() + 10)
        except (protocol.ChannelClosed, protocol.ChannelTimeout):
            pass  # reported by ensure_ready

    def ensure_ready(self) -> None:
        if self.ready:
            return
        try:
            msg = self.reader.read(deadline=time.monotonic() + self.pool.startup_timeout_s)
            if msg.get("type") != "ready":
                raise protocol.ProtocolError(f"expected ready, got {msg.get('type')!r}")
        except (protocol.ChannelClosed, protocol.ChannelTimeout, protocol.ProtocolError) as exc:
            err = self._stderr_tail()
            self.kill()
            self.spawn()
            raise SandboxUnavailable(f"sandbox worker failed to start ({exc}); stderr: {err}") from None
        isolation = Isolation.from_report(msg.get("isolation"))
        try:
            self.pool.note_isolation(isolation)
        except Exception:
            self.kill()
            self.spawn()
            raise
        self.ready = True
        self.isolation = isolation
        assert self.proc is not None and self.proc.stderr is not None
        self.proc.stderr.close()  # the worker has pointed its stderr at /dev/null
        # The empty cwd is deleted once the worker is in it: nothing can be created there, and no
        # directory is left behind if this host dies without closing the pool.
        shutil.rmtree(self.tmpdir, ignore_errors=True)

    def _stderr_tail(self) -> str:
        assert self.proc is not None
        try:
            self.proc.kill()
            self.proc.wait(timeout=5)
            data = self.proc.stderr.read() if self.proc.stderr and not self.proc.stderr.closed else b""
        except Exception:  # noqa: BLE001 - best effort diagnostics
            data = b""
        return data.decode("utf-8", "replace")[-2000:].strip() or "(empty)"

    def kill(self) -> int | None:
        """SIGKILL the worker's process group; returns its return code."""
        proc = self.proc
        if proc is None:
            return None
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            code = proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - unkillable process
            code = None
        for f in (proc.stdin, proc.stdout, proc.stderr):
            try:
                if f is not None:
                    f.close()
            except OSError:
                pass
        shutil.rmtree(self.tmpdir, ignore_errors=True)
        self.proc = None
        return code

    def replace(self) -> None:
        self.kill()
        self.spawn()

    def close(self) -> None:
        if self.proc is None:
            return
        try:
            protocol.write_frame(self.out_fd, {"type": "exit"}, deadline=time.monotonic() + 0.2)
            self.proc.wait(timeout=0.5)
        except Exception:  # noqa: BLE001 - falls through to the kill
            pass
        self.kill()

    # -- one job ------------------------------------------------------------------------------
    def run(self, job_id: int, source: str, image_msg: dict[str, Any] | None, timeout_s: float,
            memory_mb: int, session: Any) -> tuple[str, Any, str | None, str, dict[str, float]]:
        """Returns ``(status, answer, error, stdout, timings)``; never raises for worker misbehaviour."""
        if memory_mb > self.as_hard_mb:
            self.as_hard_mb = memory_mb
            self.replace()
        self.ensure_ready()
        deadline = time.monotonic() + timeout_s
        msg = {"type": "run", "job": job_id, "source": source, "image": image_msg, "timeout_s": timeout_s,
               "memory_mb": memory_mb, "stdout_cap": self.pool.stdout_cap}
        self.jobs += 1
        try:
            protocol.write_frame(self.out_fd, msg, deadline)
            while True:
                reply = self.reader.read(deadline)
                kind = reply.get("type")
                if kind == "call":
                    if reply.get("job") != job_id:
                        raise protocol.ProtocolError("tool call for another job")
                    try:
                        request = validate_call(reply)
                    except ValueError as exc:
                        answer = {"ok": False, "error": f"ValueError: {exc}"}
                    else:
                        answer = session.handle(request)
                    reply_msg = {"type": "reply", "job": job_id, **answer}
                    try:
                        protocol.encode(reply_msg)
                    except (TypeError, ValueError, protocol.ProtocolError) as exc:  # e.g. a NaN in a tool result
                        reply_msg = {"type": "reply", "job": job_id, "ok": False,
                                     "error": f"ToolError: {request['tool']} result cannot be sent: {exc}"[:500]}
                    protocol.write_frame(self.out_fd, reply_msg, deadline)
                elif kind == "result":
                    return self._finish(job_id, reply)
                else:
                    raise protocol.ProtocolError(f"unexpected frame {kind!r}")
        except protocol.ChannelTimeout:
            self.replace()
            return "timeout", None, f"TimeoutError: program exceeded {timeout_s:g} s", "", {}
        except protocol.ChannelClosed:
            code = self.kill()
            self.spawn()
            return "killed", None, f"worker died ({signal_name(code)})", "", {}
        except protocol.ProtocolError as exc:
            self.replace()
            return "killed", None, f"protocol violation: {exc}"[:MAX_ERROR_CHARS], "", {}

    def _finish(self, job_id: int, reply: dict[str, Any]) -> tuple[str, Any, str | None, str, dict[str, float]]:
        status, answer = reply.get("status"), reply.get("answer")
        if reply.get("job") != job_id or status not in WORKER_STATUSES or not is_plain(answer):
            raise protocol.ProtocolError("malformed result")
        error = reply.get("error")
        error = bounded_text(error, MAX_ERROR_CHARS) if error is not None else None
        stdout = bounded_text(reply.get("stdout"), self.pool.stdout_cap + 200)
        timings_raw = reply.get("timings")
        timings = {str(k): float(v) for k, v in timings_raw.items()
                   if type(v) in (int, float)} if type(timings_raw) is dict else {}
        cpu = reply.get("cpu_s")
        worn = type(cpu) in (int, float) and cpu > self.pool.cpu_hard_s / 2
        if reply.get("recycle") is True or self.jobs >= self.pool.recycle_after or worn:
            self.replace()
        return str(status), answer, error, stdout, timings

