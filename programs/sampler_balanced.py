"""Client-side load balancing over several LLM endpoints (e.g. one vLLM server per GPU node).

Spec: ``balanced:SPEC1|SPEC2|…`` where each part is any sampler spec, e.g.
``balanced:openai:qwen@http://10.0.0.1:8000/v1|openai:qwen@http://10.0.0.2:8000/v1``.

Prompts are split across endpoints by least outstanding work (prompts in flight × n), requests to
different endpoints run concurrently, and a prompt whose completions all failed on one endpoint is
retried once on the next healthy one (failover). An endpoint that fails
:data:`UNHEALTHY_AFTER` times in a row is skipped until every endpoint is unhealthy.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Sequence

from vpd.programs.sampler_base import SAMPLERS, Completion, Sampler, load_sampler

UNHEALTHY_AFTER = 3


class BalancedSampler(Sampler):
    """Spreads ``generate`` calls over several samplers; same interface as any sampler."""

    kind = "balanced"

    def __init__(self, samplers: Sequence[Sampler]) -> None:
        if not samplers:
            raise ValueError("balanced sampler needs at least one endpoint")
        super().__init__(name="|".join(s.name for s in samplers))
        self.samplers = list(samplers)
        self._inflight = [0] * len(self.samplers)
        self._failures = [0] * len(self.samplers)
        self._lock = threading.Lock()
        self.requests = [0] * len(self.samplers)

    @property
    def remote(self) -> bool:  # type: ignore[override]
        """Remote when every endpoint is (then calls may overlap from several threads)."""
        return all(getattr(s, "remote", False) for s in self.samplers)

    @property
    def concurrency(self) -> int:
        """Requests the endpoints take at once, summed."""
        return sum(max(1, int(getattr(s, "concurrency", 1) or 1)) for s in self.samplers)

    def _pick(self, exclude: set[int]) -> int:
        with self._lock:
            order = [i for i in range(len(self.samplers)) if i not in exclude]
            healthy = [i for i in order if self._failures[i] < UNHEALTHY_AFTER] or order
            return min(healthy, key=lambda i: (self._inflight[i], self.requests[i]))

    def _run_one(self, prompt: str, kw: dict[str, Any]) -> list[Completion]:
        tried: set[int] = set()
        last: list[Completion] = []
        while len(tried) < len(self.samplers):
            i = self._pick(tried)
            tried.add(i)
            with self._lock:
                self._inflight[i] += kw.get("n", 1)
                self.requests[i] += 1
            try:
                out = self.samplers[i].generate([prompt], **kw)[0]
            except Exception as exc:  # samplers should not raise; be safe anyway
                out = [Completion(text="", error=f"{type(exc).__name__}: {exc}")] * kw.get("n", 1)
            finally:
                with self._lock:
                    self._inflight[i] -= kw.get("n", 1)
            failed = bool(out) and all(not c.ok for c in out)
            with self._lock:
                self._failures[i] = self._failures[i] + 1 if failed else 0
            if not failed:
                return out
            last = out
        return last

    def generate(self, prompts: Sequence[str], *, n: int = 1, temperature: float = 0.0,
                 max_tokens: int = 256, stop: Sequence[str] | None = None,
                 seed: int | None = None) -> list[list[Completion]]:
        kw = dict(n=n, temperature=temperature, max_tokens=max_tokens, stop=stop, seed=seed)
        if not prompts:
            return []
        workers = max(1, min(len(prompts), 4 * len(self.samplers)))
        with ThreadPoolExecutor(max_workers=workers) as pool:
            return list(pool.map(lambda p: self._run_one(p, kw), prompts))

    def count_tokens(self, text: str) -> int:
        return self.samplers[0].count_tokens(text)

    @property
    def context_tokens(self) -> int | None:
        sizes = [s.context_tokens for s in self.samplers if s.context_tokens]
        return min(sizes) if sizes else None

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "endpoints": [s.describe() for s in self.samplers],
                "requests": list(self.requests)}

    def close(self) -> None:
        for s in self.samplers:
            s.close()


@SAMPLERS.register("balanced")
def _make(rest: str, **options: Any) -> BalancedSampler:
    parts = [p.strip() for p in rest.split("|") if p.strip()]
    return BalancedSampler([load_sampler(p, **options) for p in parts])
