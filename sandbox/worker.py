"""The sandbox worker: ``python -I -B -m vpd.sandbox.worker`` (a clean interpreter, never a fork).

Start-up: move the protocol pipes off fds 0/1 (which become /dev/null), import everything the
programs will need, read the ``init`` frame, isolate the process (:mod:`vpd.sandbox.limits`),
warm the compiler, send ``ready``. Then serve ``run`` frames one at a time: compile under the
policy, execute ``execute_command(image)`` in a fresh guarded namespace, convert the answer to
plain data here (exact built-in types, bounded), and send one ``result`` frame. Tool calls go to
the host as ``call`` frames; the worker holds only image ids and box coordinates.
"""

from __future__ import annotations

import collections
import hashlib
import importlib
import importlib.util
import os
import sys
import time
import types
from typing import Any

from vpd.sandbox import guards, limits, policy, protocol

_MAX_ERROR_CHARS = 2000
_MAX_TOOL_REQUEST_BYTES = 1_000_000
_CODE_CACHE_SIZE = 256


def _load_program_api() -> types.ModuleType:
    """Load ``vpd.tools.image_patch`` by path (stdlib only), without importing the host-side
    ``vpd.tools`` package (PIL, backends) into the worker."""
    spec = importlib.util.find_spec("vpd.tools")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("vpd.tools not found")
    path = os.path.join(list(spec.submodule_search_locations)[0], "image_patch.py")
    mod_spec = importlib.util.spec_from_file_location("vpd_program_api", path)
    assert mod_spec is not None and mod_spec.loader is not None
    module = importlib.util.module_from_spec(mod_spec)
    sys.modules["vpd_program_api"] = module
    mod_spec.loader.exec_module(module)
    return module


class ToolCallError(RuntimeError):
    """A tool call the host refused or that failed there (what the program sees)."""


class ToolBackendError(ToolCallError):
    """A tool call failed in the backend (out of memory, missing weights, a server down): the
    host's reply says ``backend_failure`` (see :mod:`vpd.tools.failures`); not the program's fault."""


class PipeToolClient:
    """The worker's :class:`~vpd.tools.image_patch.ToolClient`: one ``call`` frame, one ``reply``."""

    def __init__(self, reader: protocol.FrameReader, out_fd: int) -> None:
        self._reader = reader
        self._out = out_fd
        self._job: int | None = None

    def call(self, tool: str, image_id: str | None, box: Any, args: dict[str, Any]) -> Any:
        msg = {"type": "call", "job": self._job, "tool": tool, "image_id": image_id,
               "box": None if box is None else [int(v) for v in box], "args": args}
        try:
            frame = protocol.encode(msg)
        except (TypeError, ValueError, protocol.ProtocolError) as exc:
            raise ToolCallError(f"bad tool arguments: {exc}") from None
        if len(frame) > _MAX_TOOL_REQUEST_BYTES:
            raise ToolCallError(f"tool request too large ({len(frame)} bytes)")
        protocol.write_frame(self._out, msg)
        reply = self._reader.read()
        if reply.get("type") != "reply" or reply.get("job") != self._job:
            raise protocol.ProtocolError("unexpected frame while waiting for a tool reply")
        if not reply.get("ok"):
            if reply.get("backend_failure") is True:
                raise ToolBackendError(str(reply.get("error")))
            raise ToolCallError(str(reply.get("error")))
        return reply.get("result")


def _program_line(exc: BaseException) -> int | None:
    line = None
    tb = exc.__traceback__
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == policy.PROGRAM_FILENAME:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def describe_error(exc: BaseException) -> str:
    """``"TypeError: message (line 3)"``, bounded; never raises."""
    try:
        text = str(exc)
    except BaseException:  # noqa: BLE001 - str() of an exception argument may itself fail
        text = "<unprintable>"
    name = type(exc).__name__
    line = _program_line(exc)
    out = f"{name}: {text}" if text else name
    if line is not None:
        out += f" (line {line})"
    return out[:_MAX_ERROR_CHARS]


def _call_args(fn: types.FunctionType, handle: Any) -> list[Any]:
    """``execute_command(image)`` or VPD's ``(image, my_fig, time_wait_between_lines, syntax)``."""
    code = fn.__code__
    required = code.co_argcount - len(fn.__defaults__ or ())
    if code.co_argcount == 0:
        return []
    return [handle] + [None] * max(0, required - 1)


class Worker:
    """Serves ``run`` frames; one instance per process."""

    def __init__(self, in_fd: int, out_fd: int) -> None:
        self.reader = protocol.FrameReader(in_fd)
        self.out_fd = out_fd
        self.api_module = _load_program_api()
        self.api = dict(self.api_module.PROGRAM_API)
        self.client = PipeToolClient(self.reader, out_fd)
        self.api_module.bind_client(self.client)
        self.code_cache: collections.OrderedDict[str, Any] = collections.OrderedDict()

    def send(self, msg: dict[str, Any]) -> None:
        protocol.write_frame(self.out_fd, msg)

    def compile(self, source: str) -> Any:
        key = hashlib.sha1(source.encode("utf-8", "surrogatepass")).hexdigest()
        code = self.code_cache.get(key)
        if code is None:
            code = policy.compile_program(source)
            self.code_cache[key] = code
            if len(self.code_cache) > _CODE_CACHE_SIZE:
                self.code_cache.popitem(last=False)
        else:
            self.code_cache.move_to_end(key)
        return code

    def run(self, msg: dict[str, Any]) -> dict[str, Any]:
        job = msg.get("job")
        self.client._job = job
        stdout = guards.BoundedText(int(msg.get("stdout_cap", 65536)))
        timings: dict[str, float] = {}
        status, answer, error, recycle = "ok", None, None, False
        limits.set_job_limits(int(msg.get("memory_mb", 512)), float(msg.get("timeout_s", 5.0)))
        t0 = time.perf_counter()
        try:
            code = self.compile(msg.get("source"))
        except policy.PolicyViolation as exc:
            status, error = "rejected", f"PolicyViolation: {exc}"[:_MAX_ERROR_CHARS]
        except SyntaxError as exc:
            status, error = "error", f"SyntaxError: {exc.msg} (line {exc.lineno})"[:_MAX_ERROR_CHARS]
        except (RecursionError, MemoryError) as exc:
            status, error, recycle = "error", f"{type(exc).__name__} while compiling", True
        except Exception as exc:  # noqa: BLE001 - e.g. a lazy import the unprivileged worker cannot do
            status, error, recycle = "error", f"{type(exc).__name__} while compiling: {exc}"[:_MAX_ERROR_CHARS], True
        timings["compile_ms"] = (time.perf_counter() - t0) * 1000.0
        if status == "ok":
            t1 = time.perf_counter()
            status, answer, error, recycle = self._execute(code, msg.get("image"), stdout)
            timings["run_ms"] = (time.perf_counter() - t1) * 1000.0
        return {"type": "result", "job": job, "status": status, "answer": answer, "error": error,
                "stdout": stdout.getvalue(), "timings": timings, "recycle": recycle,
                "cpu_s": limits.cpu_seconds()}

    def _execute(self, code: Any, image: Any, stdout: guards.BoundedText) -> tuple[str, Any, str | None, bool]:
        handle = None
        if isinstance(image, dict):
            handle = self.api_module.ImageHandle(str(image["id"]), int(image["width"]),
                                                 int(image["height"]), self.client)
        glb = guards.build_globals(self.api, stdout)
        try:
            exec(code, glb)
            fn = glb.get("execute_command")
            if type(fn) is not types.FunctionType:
                return "error", None, "NameError: the program does not define execute_command(image)", False
            value = fn(*_call_args(fn, handle))
            return "ok", self.api_module.answer_to_plain(value), None, False
        except protocol.ProtocolError:
            raise
        except (MemoryError, RecursionError) as exc:
            return "error", None, describe_error(exc), True
        except BaseException as exc:  # noqa: BLE001 - SystemExit, KeyboardInterrupt … are program errors here
            return "error", None, describe_error(exc), False
        finally:
            glb.clear()

    def serve(self) -> None:
        while True:
            try:
                msg = self.reader.read()
            except protocol.ChannelClosed:
                return
            kind = msg.get("type")
            if kind == "exit":
                return
            if kind != "run":
                raise protocol.ProtocolError(f"unexpected frame {kind!r}")
            result = self.run(msg)
            try:
                self.send(result)
            except (protocol.ProtocolError, TypeError, ValueError) as exc:
                self.send({"type": "result", "job": result["job"], "status": "error", "answer": None,
                           "error": f"answer could not be sent: {type(exc).__name__}",
                           "stdout": "", "timings": result["timings"], "recycle": True})


#: Imported before privileges drop: after it, the interpreter's own files may be unreadable.
_PRELOAD = ("unicodedata", "encodings.utf_16", "encodings.utf_32", "encodings.latin_1",
            "encodings.ascii", "encodings.raw_unicode_escape", "encodings.unicode_escape")


def _warm_up(worker: Worker) -> None:
    """Import lazily loaded modules and compile/run one program (non-ASCII identifiers, f-strings,
    str.format) so every lazy import happens while the worker can still read the interpreter."""
    for name in _PRELOAD:
        try:
            importlib.import_module(name)
        except ImportError:  # pragma: no cover - minimal Python builds
            pass
    sink = guards.BoundedText(100)
    code = worker.compile('def execute_command(image):\n    x = [i for i in range(3)]\n    ｙ = 2\n'
                          '    print(f"{x!r:>5}", "{}".format(1), "é".encode("utf-16"))\n'
                          '    return {"a": x, "b": coerce_to_numeric("3 cm")}\n')
    worker._execute(code, None, sink)
    worker.code_cache.clear()


def main() -> None:
    # The protocol pipes move to fresh fds; fds 0 and 1 become /dev/null so nothing a program
    # might reach can write into the protocol stream.
    in_fd, out_fd = os.dup(0), os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    os.dup2(devnull, 0)
    os.dup2(devnull, 1)
    sys.stdin = sys.stdout = open(os.devnull, "r+")  # noqa: SIM115
    worker = Worker(in_fd, out_fd)
    init = worker.reader.read()
    if init.get("type") != "init":
        raise protocol.ProtocolError("expected init")
    _warm_up(worker)
    report = limits.isolate(init)
    os.dup2(devnull, 2)  # from here on, nothing reaches the host's stderr
    sys.stderr = sys.stdout
    os.close(devnull)
    sys.setrecursionlimit(int(init.get("recursion_limit", 600)))
    worker.send({"type": "ready", "pid": os.getpid(), "isolation": report})
    worker.serve()


if __name__ == "__main__":
    main()
