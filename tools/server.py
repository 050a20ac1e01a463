"""The batching tool server: concurrent calls to a batchable tool become micro-batches.

Sandbox workers run programs concurrently; each tool request reaches the host, which calls
:meth:`ToolServer.call_json` (or the non-blocking :meth:`ToolServer.submit_json`) from its own
thread. For a tool its backend declares ``batchable`` (``Backend.batchable``), requests wait in a
queue until ``max_batch`` (the backend's declared ``max_batch``, optionally capped) have gathered
or the oldest has waited ``max_wait_ms`` milliseconds; then one ``Backend.run_batch`` call serves
them all. Other tools pass straight through. Cache hits never wait. With a cache, a call whose cache
key equals one still in flight waits for that call's result instead of running the backend again
(single flight; counted in ``stats['coalesced']``). Tools a backend answers from an image
analysis (:attr:`Backend.analysed <vpd.tools.backend.Backend.analysed>`) share one analysis per
image the same way: cached, single flight, and batched (``Backend.analyse_batch``) when the backend
declares any of those tools batchable.

A ``ToolServer`` *is a* :class:`~vpd.tools.Toolbox` (same backends, same cache), so it drops in
wherever a toolbox goes — ``ToolHost(ToolServer(vpd.tools.load("shapes")))``. Each backend runs
one batch (or pass-through call) at a time, so backends need not be thread-safe.
"""

from __future__ import annotations

import queue
import threading
import time
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from vpd.images import load_image
from vpd.tools.backend import Backend
from vpd.tools.cache_keys import with_defaults
from vpd.tools.errors import ToolError
from vpd.tools.specs import TOOLS
from vpd.tools.toolbox import Toolbox, to_json_result

_STOP = object()
#: The batcher "tool" name of a backend's image analyses.
ANALYSIS = "@analysis"


@dataclass(frozen=True, kw_only=True)
class _Request:
    image: Image.Image | None
    args: dict[str, Any]
    future: Future
    enqueued: float


class _Batcher:
    """One queue + one thread per (backend, tool)."""

    def __init__(self, server: "ToolServer", backend: Backend, tool: str, max_batch: int,
                 max_wait_s: float) -> None:
        self.server, self.backend, self.tool = server, backend, tool
        self.max_batch, self.max_wait_s = max_batch, max_wait_s
        self.queue: queue.Queue = queue.Queue()
        self.thread = threading.Thread(target=self._loop, name=f"toolserver-{backend.name}-{tool}", daemon=True)
        self.thread.start()

    def submit(self, image: Image.Image | None, args: dict[str, Any]) -> Future:
        fut: Future = Future()
        self.queue.put(_Request(image=image, args=args, future=fut, enqueued=time.perf_counter()))
        return fut

    def stop(self) -> None:
        self.queue.put(_STOP)
        self.thread.join(timeout=5)

    def _gather(self, first: _Request) -> tuple[list[_Request], bool]:
        batch, stop = [first], False
        deadline = first.enqueued + self.max_wait_s
        while len(batch) < self.max_batch:
            remaining = deadline - time.perf_counter()
            try:
                item = self.queue.get(timeout=remaining) if remaining > 0 else self.queue.get_nowait()
            except queue.Empty:
                break
            if item is _STOP:
                stop = True
                break
            batch.append(item)
        return batch, stop

    def _loop(self) -> None:
        while True:
            item = self.queue.get()
            if item is _STOP:
                return
            batch, stop = self._gather(item)
            self._run(batch)
            if stop:
                return

    def _run(self, batch: list[_Request]) -> None:
        try:
            with self.server._backend_lock(self.backend):
                if self.tool == ANALYSIS:
                    results = self.backend.analyse_batch([r.image for r in batch])
                else:
                    results = self.backend.run_batch(self.tool, [r.image for r in batch], [r.args for r in batch])
            if len(results) != len(batch):
                raise ToolError(f"backend {self.backend.name!r} returned {len(results)} results "
                                f"for a batch of {len(batch)}")
        except Exception as exc:  # the whole batch failed: every caller sees the error
            for r in batch:
                r.future.set_exception(exc)
            return
        finally:
            self.server._record_batch(self.tool, len(batch))
        for r, res in zip(batch, results):
            if isinstance(res, BaseException):
                r.future.set_exception(res)
            else:
                r.future.set_result(res)


class ToolServer(Toolbox):
    """A toolbox whose batchable tools are served in micro-batches.

    ``max_wait_ms``: longest time (milliseconds) the first request of a batch waits for company.
    ``max_batch``: optional cap on every backend's declared ``max_batch``.
    """

    def __init__(self, toolbox: Toolbox, *, max_wait_ms: float = 5.0, max_batch: int | None = None) -> None:
        super().__init__(toolbox.backends, cache=toolbox.cache, share_analyses=toolbox.share_analyses)
        self.inner = toolbox
        self.max_wait_ms = float(max_wait_ms)
        self.max_batch_cap = max_batch
        self._lock = threading.Lock()
        self._batchers: dict[tuple[int, str], _Batcher] = {}
        self._backend_locks: dict[int, threading.Lock] = {}
        self.batch_sizes: dict[str, list[int]] = {}
        self._inflight: dict[str, Future] = {}
        self.stats.setdefault("coalesced", 0)

    # -- bookkeeping ------------------------------------------------------------------------
    def _backend_lock(self, backend: Backend) -> threading.Lock:
        with self._lock:
            return self._backend_locks.setdefault(id(backend), threading.Lock())

    def _record_batch(self, tool: str, size: int) -> None:
        with self._lock:
            self.batch_sizes.setdefault(tool, []).append(size)

    def _count(self, key: str) -> None:
        with self._lock:
            self.stats[key] += 1

    def batch_stats(self) -> dict[str, dict[str, float]]:
        """tool -> {batches, requests, mean_batch, max_batch} for batched tools."""
        with self._lock:
            return {t: {"batches": len(s), "requests": sum(s), "mean_batch": round(sum(s) / len(s), 3),
                        "max_batch": max(s)} for t, s in self.batch_sizes.items() if s}

    def batch_limit(self, backend: Backend) -> int:
        limit = max(1, int(backend.max_batch))
        return min(limit, self.max_batch_cap) if self.max_batch_cap else limit

    def _batcher(self, backend: Backend, tool: str) -> _Batcher:
        key = (id(backend), tool)
        with self._lock:
            b = self._batchers.get(key)
            if b is None:
                b = _Batcher(self, backend, tool, self.batch_limit(backend), self.max_wait_ms / 1000.0)
                self._batchers[key] = b
            return b

    # -- calls ------------------------------------------------------------------------------
    def submit_json(self, tool: str, image: Image.Image | str | Path | None, **args: Any) -> Future:
        """Start a tool call; the future resolves to ``(json_result, cached)`` or raises."""
        backend = self.backend_for(tool)
        spec = TOOLS.get(tool)
        img = load_image(image) if (spec.needs_image and image is not None) else None
        if spec.needs_image and img is None:
            raise ToolError(f"tool {tool!r} needs an image")
        args = with_defaults(spec.default_args, args)
        self._count("calls")
        if self.cache is None:
            key, out = "", Future()
        else:
            key = self.cache_key(tool, img, args)
            out, served = self._lookup(key, follow_stat="coalesced", hit_stat="cache_hits")
            if served:
                return out

        def finish(value: Any, cached: bool = False) -> None:
            try:
                result = to_json_result(tool, value)
                if self.cache is not None:
                    self.cache.put(key, result)
            except Exception as exc:
                self._settle(key, out, exc)
                return
            self._settle(key, out, (result, cached))

        if self.shares_analysis(backend, tool, img, args):
            assert img is not None

            def answer(f: Future) -> None:
                exc = f.exception()
                if exc is not None:
                    self._settle(key, out, exc)
                    return
                analysis, cached = f.result()
                try:
                    value = backend.answer(tool, analysis, **args)
                except Exception as err:
                    self._settle(key, out, err)
                    return
                finish(value, cached)

            self._analysis(backend, img).add_done_callback(answer)
            return out
        self._count("backend_calls")
        if tool in backend.batchable and self.batch_limit(backend) > 1:
            inner = self._batcher(backend, tool).submit(img, dict(args))

            def relay(f: Future) -> None:
                exc = f.exception()
                if exc is not None:
                    self._settle(key, out, exc)
                else:
                    finish(f.result())

            inner.add_done_callback(relay)
            return out
        try:
            with self._backend_lock(backend):
                value = backend.run(tool, img, **args)
        except Exception as exc:
            self._settle(key, out, exc)
            return out
        finish(value)
        return out

    def _analysis(self, backend: Backend, img: Image.Image) -> Future:
        """The image's analysis by ``backend`` as a future of ``(analysis, cached)``: from the
        cache, from an equal analysis in flight, or one backend invocation (batched if allowed)."""
        assert self.cache is not None
        akey = self.analysis_key(backend, img)
        out, served = self._lookup(akey, follow_stat="analysis_hits", hit_stat="analysis_hits")
        if served:
            return out
        self._count("backend_calls")

        def store(analysis: Any) -> None:
            if analysis is None:
                self._settle(akey, out, ToolError(f"backend {backend.name!r}: analyse() returned None"))
                return
            self.cache.put(akey, analysis)  # type: ignore[union-attr]
            self._settle(akey, out, (analysis, False))

        if backend.analysed & backend.batchable and self.batch_limit(backend) > 1:
            def relay(f: Future) -> None:
                exc = f.exception()
                if exc is not None:
                    self._settle(akey, out, exc)
                else:
                    store(f.result())

            self._batcher(backend, ANALYSIS).submit(img, {}).add_done_callback(relay)
            return out
        try:
            with self._backend_lock(backend):
                analysis = backend.analyse(img)
        except Exception as exc:
            self._settle(akey, out, exc)
            return out
        store(analysis)
        return out

    def _lookup(self, key: str, *, follow_stat: str, hit_stat: str) -> tuple[Future, bool]:
        """Single flight + cache for ``key``: ``(future, True)`` when it is already served (it
        follows an equal call in flight, or holds the cached value); else ``(future, False)``:
        the caller now leads ``key`` and must settle the future with :meth:`_settle`."""
        assert self.cache is not None
        out: Future = Future()
        with self._lock:  # single flight: a call equal to one in progress waits for its result
            leader = self._inflight.get(key)
            if leader is None:
                self._inflight[key] = out
        if leader is not None:
            self._count(follow_stat)
            return _follow(leader), True
        hit = self.cache.get(key)
        if hit is not None:
            self._count(hit_stat)
            self._settle(key, out, (hit, True))
            return out, True
        return out, False

    def _settle(self, key: str, out: Future, outcome: Any) -> None:
        """Resolve ``out`` (a result tuple or an exception) and end its single-flight slot."""
        if key:
            with self._lock:
                if self._inflight.get(key) is out:
                    del self._inflight[key]
        if isinstance(outcome, BaseException):
            out.set_exception(outcome)
        else:
            out.set_result(outcome)

    def call_json(self, tool: str, image: Image.Image | str | Path | None, **args: Any) -> tuple[Any, bool]:
        """Run ``tool`` (batched when its backend allows) and return ``(json_result, cached)``."""
        return self.submit_json(tool, image, **args).result()

    def close(self) -> None:
        """Stop the batching threads (backends stay open; close the inner toolbox for those)."""
        with self._lock:
            batchers, self._batchers = list(self._batchers.values()), {}
        for b in batchers:
            b.stop()


def _follow(leader: Future) -> Future:
    """A future with the leader's result marked cached (no backend call of its own), or its error."""
    out: Future = Future()

    def relay(f: Future) -> None:
        exc = f.exception()
        if exc is not None:
            out.set_exception(exc)
        else:
            out.set_result((f.result()[0], True))

    leader.add_done_callback(relay)
    return out
