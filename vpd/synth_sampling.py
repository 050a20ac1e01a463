"""How ``vpd synth`` asks for programs: chunks of distinct questions, each with its own seed.

* A **remote** sampler (``Sampler.remote``: it only waits on a server, e.g. ``openai``) gets each
  question of a chunk as its own call, all in flight together, seeded exactly as when they are
  asked one by one — so ``--llm-batch`` changes speed, never the programs.
* An **in-process** sampler (Gemma, transformers) gets the chunk as one batched call (its seed is
  the chunk's; ``--llm-batch 1`` keeps every question reproducible on its own).
* With ``overlap`` the next chunk is sampled in a background thread while the current chunk's
  programs run in the sandbox (default: on for remote samplers, whose waiting costs no CPU).

Background threads are daemons: Ctrl-C or SIGKILL never waits on a slow server, and nothing is
written from them (the main loop writes, in order), so resume semantics are unchanged.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence, TypeVar

Question = tuple[str, "tuple[str, ...] | None"]
T = TypeVar("T")


@dataclass(frozen=True)
class SampledChunk:
    """The samples of one chunk (one row of ``k`` per question) and each question's sampling
    seconds (its own request's wall time; a batched call's time shared evenly)."""

    rows: list[list[Any]]
    seconds: list[float]


def is_remote(sampler: Any) -> bool:
    """True for samplers that only wait on a server (calls may overlap from several threads)."""
    return bool(getattr(sampler, "remote", False))


def default_llm_batch(sampler: Any) -> int:
    """Questions per chunk when ``--llm-batch`` is not given: a remote sampler's concurrency (its
    requests overlap), else 1 (an in-process batch would tie each question's seed to its chunk)."""
    if is_remote(sampler):
        return max(1, int(getattr(sampler, "concurrency", 8) or 8))
    return 1


class Background:
    """A value computed in a daemon thread; :meth:`result` waits for it (and re-raises its error)."""

    def __init__(self, fn: Callable[..., T], *args: Any) -> None:
        self._box: dict[str, Any] = {}
        self._thread = threading.Thread(target=self._run, args=(fn, args), daemon=True, name="vpd-sample-ahead")
        self._thread.start()

    def _run(self, fn: Callable[..., Any], args: tuple) -> None:
        try:
            self._box["value"] = fn(*args)
        except BaseException as exc:  # handed to the waiting thread
            self._box["error"] = exc

    def result(self) -> Any:
        self._thread.join()
        if "error" in self._box:
            raise self._box["error"]
        return self._box["value"]


class ChunkSampler:
    """Samples one chunk of questions through ``sample(questions, k, seed=…) -> rows``.

    ``seed_for(*questions)`` gives the seed of a call; ``failed(question, exc)`` the row recorded
    when a call raises (a broken sampler fails its questions, not the run).
    """

    def __init__(self, sample: Callable[..., list[list[Any]]], k: int, *, seed_for: Callable[..., int],
                 failed: Callable[[Question, BaseException], list[Any]], per_question: bool) -> None:
        self._sample, self.k, self._seed_for, self._failed = sample, k, seed_for, failed
        self.per_question = per_question

    def _call(self, qs: Sequence[Question]) -> list[list[Any]]:
        try:
            return self._sample(list(qs), self.k, seed=self._seed_for(*qs))
        except Exception as exc:
            return [self._failed(q, exc) for q in qs]

    def _timed(self, q: Question) -> tuple[list[Any], float]:
        t = time.perf_counter()
        row = self._call([q])[0]
        return row, time.perf_counter() - t

    def __call__(self, qs: Sequence[Question]) -> SampledChunk:
        if self.per_question and len(qs) > 1:
            calls = [Background(self._timed, q) for q in qs]
            done = [c.result() for c in calls]
            return SampledChunk(rows=[r for r, _ in done], seconds=[s for _, s in done])
        t = time.perf_counter()
        rows = self._call(qs)
        share = (time.perf_counter() - t) / max(1, len(qs))
        return SampledChunk(rows=rows, seconds=[share] * len(qs))


def sampled_chunks(chunks: Sequence[T], sample: Callable[[T], SampledChunk], *, overlap: bool,
                   waited: Callable[[float], None] = lambda s: None) -> Iterator[tuple[T, SampledChunk]]:
    """``(chunk, samples)`` in order; with ``overlap`` chunk ``i + 1`` is being sampled while the
    caller works on chunk ``i``. ``waited(seconds)`` is told how long each chunk was waited for."""
    ahead: Background | None = None
    for i, chunk in enumerate(chunks):
        t = time.perf_counter()
        got = ahead.result() if ahead is not None else sample(chunk)
        waited(time.perf_counter() - t)
        ahead = Background(sample, chunks[i + 1]) if overlap and i + 1 < len(chunks) else None
        yield chunk, got
