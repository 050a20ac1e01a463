"""``replay:FILE`` — a sampler that replays recorded completions per question (no model).

Use it to re-run execution and checking with fixed programs (a new tool backend, a new checker)
or to make synthesis fully deterministic in tests. ``FILE`` is either

* a JSONL file with lines ``{"question": str, "choices": [..] | null, "completions": [str, ...]}``
  (``"completion": str`` is accepted for one), or
* a ``vpd synth`` run directory (or one of its ``candidates-*.jsonl`` shards): the raw
  completions recorded there, per distinct (question, choices), in candidate order.

A prompt is matched to the recorded question whose text occurs **last** in it (the question
being asked follows the few-shot examples); when several share that place the longest wins, and
choices, when recorded, must all appear after it. ``n`` completions are the first ``n`` recorded
ones (cycling when fewer were recorded). An unknown question yields completions with ``error`` set.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

from vpd.programs.sampler_base import (SAMPLERS, Completion, Sampler, SamplerOptionError, estimate_tokens,
                                       truncate_at_stop)

Key = tuple[str, tuple[str, ...] | None]


def _key(question: str, choices: Any) -> Key:
    return (str(question), None if not choices else tuple(str(c) for c in choices))


def load_recordings(path: str | Path) -> dict[Key, list[str]]:
    """(question, choices) -> completions, from a JSONL file or a run directory / shard."""
    p = Path(path).expanduser()
    if not p.exists():
        raise FileNotFoundError(f"replay sampler: no recordings at {p} (give a JSONL file or a run directory)")
    files = sorted(p.glob("candidates-*.jsonl")) if p.is_dir() else [p]
    if p.is_dir() and not files:
        raise FileNotFoundError(f"replay sampler: {p} holds no candidates-*.jsonl shards")
    out: dict[Key, list[str]] = {}
    seen: set[tuple[str, int]] = set()
    for f in files:
        with f.open(encoding="utf-8", errors="replace") as fh:
            for line in fh:
                try:
                    rec = json.loads(line)
                except ValueError:
                    continue  # a torn line of a crashed run
                if not isinstance(rec, dict):
                    continue
                if "completions" in rec or "completion" in rec:
                    comps = rec.get("completions")
                    comps = [rec["completion"]] if comps is None else comps
                    out.setdefault(_key(rec.get("question", ""), rec.get("choices")), []).extend(str(c) for c in comps)
                elif isinstance(rec.get("example"), dict) and "raw_completion" in rec:
                    ex = rec["example"]
                    key = _key(ex.get("question", ""), ex.get("choices"))
                    # one run stores the same sampled programs for every example asking a question
                    tag = (json.dumps(key), int(rec.get("index", 0)))
                    if tag in seen:
                        continue
                    seen.add(tag)
                    out.setdefault(key, []).append(str(rec.get("raw_completion") or ""))
    return out


class ReplaySampler(Sampler):
    """Serves recorded completions; counts requests like a real sampler."""

    kind = "replay"

    def __init__(self, recordings: dict[Key, list[str]], *, name: str) -> None:
        super().__init__(name=name)
        self.recordings = recordings
        self.stats = {"requests": 0, "misses": 0}

    def _match(self, prompt: str) -> Key | None:
        best: tuple[int, int] | None = None
        found: Key | None = None
        for key in self.recordings:
            q, choices = key
            pos = prompt.rfind(q) if q else -1
            if pos < 0:
                continue
            if choices and not all(c in prompt[pos:] for c in choices):
                continue
            score = (pos + len(q), len(q) + sum(len(c) for c in choices or ()))
            if best is None or score > best:
                best, found = score, key
        return found

    def generate(self, prompts: Sequence[str], *, n: int = 1, temperature: float = 0.0,
                 max_tokens: int = 256, stop: Sequence[str] | None = None,
                 seed: int | None = None) -> list[list[Completion]]:
        out: list[list[Completion]] = []
        for prompt in prompts:
            self.stats["requests"] += 1
            key = self._match(prompt)
            ptok = estimate_tokens(prompt)
            if key is None or not self.recordings[key]:
                self.stats["misses"] += 1
                out.append([Completion(text="", prompt_tokens=ptok,
                                       error="replay: no recorded completion for this question")] * n)
                continue
            recs = self.recordings[key]
            comps = []
            for i in range(n):
                text, _ = truncate_at_stop(recs[i % len(recs)], stop)
                comps.append(Completion(text=text, prompt_tokens=ptok, completion_tokens=estimate_tokens(text)))
            out.append(comps)
        return out

    def describe(self) -> dict[str, Any]:
        return {"kind": self.kind, "name": self.name, "questions": len(self.recordings)}


def _replay_factory(rest: str, **options: Any) -> ReplaySampler:
    if not rest:
        raise ValueError("replay sampler needs a file: 'replay:FILE.jsonl' or 'replay:RUN_DIR'")
    if options:
        raise SamplerOptionError(f"the replay sampler takes no options (given: {', '.join(sorted(options))})")
    return ReplaySampler(load_recordings(rest), name=f"replay:{rest}")


if "replay" not in SAMPLERS:
    SAMPLERS.add("replay", _replay_factory)
