"""The host side: a pool of pre-started sandbox workers, each driven by the thread that runs its job.

Each job gets its own :class:`vpd.tools.host.ToolHost` (the image, the trace), created by
``host_factory(toolbox)``; the job's thread serves that worker's tool requests by calling
``host.handle(request)``, so tool calls from many workers are served concurrently. That call is
the seam for a batching tool server: pass a ``host_factory`` whose host forwards ``handle`` (or
whose toolbox forwards ``call_json``) to the server. By default calls into one Toolbox are
serialised with a lock (backends need not be thread-safe); pass ``serialize_tools=False`` for
thread-safe backends.

Each worker process is driven through a :class:`~vpd.sandbox.worker_slot.WorkerSlot`, which checks
every tool request with :func:`~vpd.sandbox.tool_request.validate_call` before the host serves it.
Deadlines are wall-clock from dispatch and include tool time. On a deadline the worker's whole
process group is SIGKILLed and the slot gets a fresh worker (started at once, ready by the time
it is needed). Workers are also replaced after any abnormal event (death, protocol violation,
MemoryError/RecursionError) and recycled after ``recycle_after`` programs.

Isolation: every worker reports which OS layers it got (:mod:`vpd.sandbox.isolation`); the pool
warns once (:class:`~vpd.sandbox.isolation.SandboxIsolationWarning`) when one is missing and, with
``require_isolation=True``, refuses to start (:class:`~vpd.sandbox.isolation.IsolationError`).
"""

from __future__ import annotations

import atexit
import collections
import concurrent.futures as cf
import itertools
import json
import os
import queue
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping

from PIL import Image

from vpd.images import ImageLoadError, load_image
from vpd.sandbox.image_cache import ImageCache
from vpd.sandbox.isolation import Isolation, SandboxIsolationWarning, check, skip_from_env
from vpd.sandbox.policy import MAX_SOURCE_CHARS
from vpd.sandbox.result import MAX_ERROR_CHARS, ExecutionResult
from vpd.sandbox.worker_slot import WorkerSlot
from vpd.tools.host import ToolHost
from vpd.tools.toolbox import Toolbox
from vpd.types import Trace

ImageLike = str | Path | bytes | Image.Image | None
ToolsLike = Toolbox | str | Mapping[str, Any] | None

_STDOUT_CAP = 65_536


class _SerialToolbox:
    """A Toolbox facade whose ``call_json`` holds a lock (for backends that are not thread-safe)."""

    def __init__(self, toolbox: Toolbox, lock: threading.Lock) -> None:
        self._toolbox, self._lock = toolbox, lock

    @property
    def backends(self) -> dict[str, Any]:
        return self._toolbox.backends

    def call_json(self, tool: str, image: Any, **args: Any) -> tuple[Any, bool]:
        with self._lock:
            return self._toolbox.call_json(tool, image, **args)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._toolbox, name)


def _default_host_factory(serialize: bool) -> Callable[[Toolbox], ToolHost]:
    lock = threading.Lock()

    def factory(toolbox: Toolbox) -> ToolHost:
        return ToolHost(_SerialToolbox(toolbox, lock) if serialize else toolbox)  # type: ignore[arg-type]

    return factory


class SandboxPool:
    """Pre-started sandbox workers running programs concurrently.

    >>> with SandboxPool(workers=2, tools="shapes") as pool:          # doctest: +SKIP
    ...     res = pool.run(src, image="scene.png", timeout_s=2.0)
    ...     many = pool.map([(src, "a.png"), (src, "b.png")])

    ``tools``: a Toolbox, a spec for :func:`vpd.tools.load`, or None (``"shapes"`` for jobs with
    an image, no tools otherwise: any tool call is then a clean runtime error).
    ``max_memory_mb`` is the workers' hard address-space limit (a job asking for more gets a
    fresh worker with a higher one).
    """

    def __init__(self, workers: int | None = None, tools: ToolsLike = None, *, timeout_s: float = 5.0,
                 memory_mb: int = 512, max_memory_mb: int = 2048, recycle_after: int = 200,
                 stdout_cap: int = _STDOUT_CAP, startup_timeout_s: float = 60.0,
                 cpu_hard_s: int = 3600, serialize_tools: bool = True,
                 host_factory: Callable[[Toolbox], Any] | None = None, python: str | None = None,
                 require_isolation: bool = False, skip_layers: Iterable[str] | None = None) -> None:
        self.require_isolation = bool(require_isolation)
        self.skip_layers = skip_from_env() if skip_layers is None else skip_from_env(",".join(skip_layers))
        self._warned = False
        self.workers = max(1, int(workers or min(4, os.cpu_count() or 1)))
        self.timeout_s = float(timeout_s)
        self.memory_mb = int(memory_mb)
        self.max_memory_mb = max(int(max_memory_mb), self.memory_mb)
        self.recycle_after = max(1, int(recycle_after))
        self.stdout_cap = int(stdout_cap)
        self.startup_timeout_s = float(startup_timeout_s)
        self.cpu_hard_s = int(cpu_hard_s)
        self.python = python
        self.host_factory = host_factory or _default_host_factory(serialize_tools)
        self._tools_spec = tools
        self._toolboxes: dict[str, Toolbox] = {}
        self._toolbox_lock = threading.Lock()
        self._images: dict[str, Image.Image] = {}
        self._image_ids = itertools.count()
        self._image_cache = ImageCache()
        self._job_ids = itertools.count(1)
        self._closed = False
        self._slots = [WorkerSlot(i, self) for i in range(self.workers)]
        self._free: queue.Queue[WorkerSlot] = queue.Queue()
        for s in self._slots:
            self._free.put(s)
        if self.require_isolation:
            try:
                self.isolation()  # the first worker's report: refuse before any job runs
            except BaseException:
                self.close()
                raise

    # -- images -------------------------------------------------------------------------------
    def add_image(self, image: str | Path | bytes | Image.Image) -> str:
        """Decode and keep an image for many jobs; returns an id to pass as ``image=``."""
        img = load_image(image)
        image_id = f"pool-image-{next(self._image_ids)}"
        self._images[image_id] = img
        return image_id

    def drop_image(self, image_id: str) -> None:
        self._images.pop(image_id, None)

    def _resolve_image(self, image: ImageLike) -> Image.Image:
        if isinstance(image, str) and image in self._images:
            return self._images[image]
        if isinstance(image, (str, Path)):
            return self._image_cache.get(image)
        return load_image(image)  # type: ignore[arg-type]

    # -- tools --------------------------------------------------------------------------------
    def _toolbox(self, tools: ToolsLike, has_image: bool) -> Toolbox:
        spec = tools if tools is not None else self._tools_spec
        if isinstance(spec, Toolbox):
            return spec
        if spec is None and not has_image:
            return self._cached_toolbox("__none__", lambda: Toolbox({}))
        spec = "shapes" if spec is None else spec
        key = json.dumps(spec, sort_keys=True, default=str)

        def build() -> Toolbox:
            from vpd.tools import load

            return load(spec)  # type: ignore[arg-type]

        return self._cached_toolbox(key, build)

    def _cached_toolbox(self, key: str, build: Callable[[], Toolbox]) -> Toolbox:
        with self._toolbox_lock:
            if key not in self._toolboxes:
                self._toolboxes[key] = build()
            return self._toolboxes[key]

    # -- running ------------------------------------------------------------------------------
    def run(self, source: str, image: ImageLike = None, timeout_s: float | None = None,
            memory_mb: int | None = None, tools: ToolsLike = None) -> ExecutionResult:
        """Run one program (``def execute_command(image): …``) on ``image`` (a path, PIL image,
        encoded bytes or an id from :meth:`add_image`). Never raises for anything the program does."""
        if self._closed:
            raise RuntimeError("SandboxPool is closed")
        timeout_s = self.timeout_s if timeout_s is None else float(timeout_s)
        memory_mb = self.memory_mb if memory_mb is None else int(memory_mb)
        t_call = time.perf_counter()
        if not isinstance(source, str):
            return ExecutionResult(status="rejected", error="PolicyViolation: program source must be text")
        if len(source) > MAX_SOURCE_CHARS:
            return ExecutionResult(status="rejected",
                                   error=f"PolicyViolation: program too long ({len(source)} > {MAX_SOURCE_CHARS} characters)")
        session = self.host_factory(self._toolbox(tools, image is not None))
        image_msg = None
        if image is not None:
            try:
                pil = self._resolve_image(image)
            except (ImageLoadError, OSError, ValueError, TypeError) as exc:
                return ExecutionResult(status="error", error=f"ImageLoadError: {exc}"[:MAX_ERROR_CHARS])
            image_id, width, height = session.add_image(pil)
            image_msg = {"id": image_id, "width": width, "height": height}
        slot = self._free.get()
        try:
            slot.ensure_ready()
            t0 = time.perf_counter()
            status, answer, error, stdout, timings = slot.run(
                next(self._job_ids), source, image_msg, timeout_s, memory_mb, session)
            elapsed = time.perf_counter() - t0
        finally:
            self._free.put(slot)
        timings["wait_ms"] = (t0 - t_call) * 1000.0
        trace: Trace = session.trace(output=answer)
        return ExecutionResult(status=status, answer=answer, error=error, stdout=stdout, trace=trace,
                               elapsed_s=elapsed, timings=timings)

    def imap(self, jobs: Iterable[Any], *, progress: bool = False, total: int | None = None) -> Iterator[ExecutionResult]:
        """Like :meth:`map`, yielding results in job order as they finish (bounded look-ahead)."""
        window = 4 * self.workers
        pending: collections.deque[cf.Future[ExecutionResult]] = collections.deque()
        bar = _Progress(progress, total)
        with cf.ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="vpd-sandbox") as ex:
            try:
                for job in jobs:
                    pending.append(ex.submit(self._run_job, job))
                    while len(pending) >= window:
                        yield bar.step(pending.popleft().result())
                while pending:
                    yield bar.step(pending.popleft().result())
            finally:
                for f in pending:
                    f.cancel()
                bar.close()

    def map(self, jobs: Iterable[Any], *, progress: bool = False) -> list[ExecutionResult]:
        """Run many jobs across the workers; results in job order.

        A job is a dict of :meth:`run` keyword arguments (``source`` or ``program``, ``image``,
        ``timeout_s``, ``memory_mb``, ``tools``), a ``(source, image)`` pair, or a bare source.
        """
        jobs = list(jobs)
        return list(self.imap(jobs, progress=progress, total=len(jobs)))

    def _run_job(self, job: Any) -> ExecutionResult:
        if isinstance(job, str):
            return self.run(job)
        if isinstance(job, Mapping):
            kw = dict(job)
            if "program" in kw and "source" not in kw:
                kw["source"] = kw.pop("program")
            allowed = {"source", "image", "timeout_s", "memory_mb", "tools"}
            return self.run(**{k: v for k, v in kw.items() if k in allowed})
        source, image = job
        return self.run(source, image)

    # -- introspection and shutdown -------------------------------------------------------------
    def worker_pids(self) -> list[int]:
        return [s.pid for s in self._slots]

    def isolation(self) -> Isolation:
        """Which OS isolation layers a worker got (waits until one is ready); see
        :mod:`vpd.sandbox.isolation`. Raises IsolationError with ``require_isolation`` when one is missing."""
        slot = self._free.get()
        try:
            slot.ensure_ready()
            assert slot.isolation is not None
            return slot.isolation
        finally:
            self._free.put(slot)

    def note_isolation(self, isolation: Isolation) -> None:
        """Each worker's report (from its :class:`~vpd.sandbox.worker_slot.WorkerSlot`): IsolationError
        if required and incomplete, else one warning per pool."""
        check(isolation, required=self.require_isolation, skipped=self.skip_layers)
        if not isolation.complete and not self._warned:
            self._warned = True
            warnings.warn(f"sandbox workers run without {len(isolation.missing)} OS isolation layer(s): "
                          f"{isolation.describe_missing()}; `vpd synth --require-isolation` (require_isolation=True) "
                          "refuses to run like this", SandboxIsolationWarning, stacklevel=2)

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        for s in self._slots:
            s.close()

    def __enter__(self) -> "SandboxPool":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __del__(self) -> None:  # pragma: no cover - best effort
        try:
            self.close()
        except Exception:  # noqa: BLE001
            pass


class _Progress:
    def __init__(self, enabled: bool, total: int | None) -> None:
        self.bar = None
        if enabled:
            from rich.progress import Progress

            self.bar = Progress()
            self.bar.start()
            self.task = self.bar.add_task("sandbox", total=total)

    def step(self, result: ExecutionResult) -> ExecutionResult:
        if self.bar is not None:
            self.bar.advance(self.task)
        return result

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


_DEFAULT: SandboxPool | None = None
_DEFAULT_LOCK = threading.Lock()


def default_pool() -> SandboxPool:
    """The lazily created module-level pool behind :func:`run_program` (closed at exit)."""
    global _DEFAULT
    with _DEFAULT_LOCK:
        if _DEFAULT is None or _DEFAULT._closed:
            _DEFAULT = SandboxPool(workers=int(os.environ.get("VPD_SANDBOX_WORKERS", "2")))
            atexit.register(_DEFAULT.close)
        return _DEFAULT


def probe_isolation(*, require: bool = False) -> Isolation:
    """Start one worker, return its :class:`~vpd.sandbox.isolation.Isolation` and stop it; with
    ``require`` raise IsolationError (before anything else is started) when a layer is missing."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", SandboxIsolationWarning)  # the caller reports what it found
        with SandboxPool(workers=1, require_isolation=require) as pool:
            return pool.isolation()


def run_program(source: str, image: ImageLike = None, timeout_s: float = 5.0, memory_mb: int = 512,
                tools: ToolsLike = None) -> ExecutionResult:
    """Run one untrusted program in the default pool. See :class:`SandboxPool.run`."""
    return default_pool().run(source, image=image, timeout_s=timeout_s, memory_mb=memory_mb, tools=tools)
