"""Reading a synth run directory's JSONL files (tolerant) and merging stage reports.

Formats (``docs/contracts.md`` "Runs"): ``verified.jsonl`` lines ``{"example": {...}, "candidate":
{...}}``; ``predictions.jsonl`` (``--no-labels``) lines carry the same ``example`` and ``candidate``
for the program chosen by majority vote; ``candidates-NNNNN.jsonl`` lines ``Candidate.to_dict()`` plus ``"example"``. A malformed or
truncated line (e.g. after a SIGKILL) is counted, never fatal.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from vpd.types import Candidate, Example


@dataclass(frozen=True, kw_only=True)
class Verified:
    """One verified example of a run: the example and its chosen passing candidate."""

    example: Example
    candidate: Candidate


@dataclass(kw_only=True)
class ReadStats:
    """Counts of what a reader skipped (mutable: filled while reading)."""

    bad_lines: int = 0
    errors: list[str] = field(default_factory=list)

    def add(self, where: str, exc: Exception) -> None:
        self.bad_lines += 1
        if len(self.errors) < 20:
            self.errors.append(f"{where}: {type(exc).__name__}: {exc}")


def iter_jsonl(path: Path, stats: ReadStats | None = None) -> Iterator[dict[str, Any]]:
    """JSON objects of a JSONL file; bad lines are counted in ``stats``."""
    with Path(path).open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                if not isinstance(rec, dict):
                    raise ValueError("not a JSON object")
            except (json.JSONDecodeError, ValueError) as exc:
                if stats is not None:
                    stats.add(f"{path}:{lineno}", exc)
                continue
            yield rec


def resolve_image(image: str, run: Path) -> str:
    """An absolute image path: as is if it exists, else relative to the run's data folder."""
    p = Path(image)
    if p.is_absolute() or p.exists():
        return str(p.resolve())
    try:
        cfg = json.loads((run / "config.json").read_text())
        data = cfg.get("data") or (cfg.get("config") or {}).get("data")
        if data:
            root = Path(data)
            root = root if root.is_dir() else root.parent
            cand = root / image
            if cand.exists():
                return str(cand.resolve())
    except (OSError, ValueError, AttributeError):
        pass
    return str(p.resolve())


def _read_traced(run: Path, name: str, stats: ReadStats | None, *, optional_candidate: bool) -> list[Verified]:
    """The ``{example, candidate}`` records of ``run/name`` (empty if absent); malformed ones are
    counted in ``stats``. With ``optional_candidate``, records without a candidate are skipped."""
    file = run / name
    if not file.is_file():
        return []
    out: list[Verified] = []
    for i, rec in enumerate(iter_jsonl(file, stats)):
        if optional_candidate and isinstance(rec, dict) and not rec.get("candidate"):
            continue  # no candidate succeeded: nothing to rationalize
        try:
            ex_dict = dict(rec["example"])
            ex_dict["image"] = resolve_image(str(ex_dict.get("image", "")), run)
            out.append(Verified(example=Example.from_dict(ex_dict), candidate=Candidate.from_dict(rec["candidate"])))
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if stats is not None:
                stats.add(f"{file} record {i}", exc)
    return out


def read_verified(run: str | Path, stats: ReadStats | None = None) -> list[Verified]:
    """The verified examples of a run (empty if it has none)."""
    return _read_traced(Path(run), "verified.jsonl", stats, optional_candidate=False)


def read_chosen(run: str | Path, stats: ReadStats | None = None) -> list[Verified]:
    """The programs chosen by majority vote in an unlabelled run (``predictions.jsonl`` lines with a
    ``candidate``): not verified against any label, but the trace behind each prediction."""
    return _read_traced(Path(run), "predictions.jsonl", stats, optional_candidate=True)


def read_run_examples(run: str | Path, stats: ReadStats | None = None) -> list[Example]:
    """Every distinct example of a run (from ``candidates-*.jsonl`` and ``verified.jsonl``), by id."""
    run = Path(run)
    seen: dict[str, Example] = {}
    if (run / "examples.jsonl").is_file():  # a labelled dataset folder: its examples join (label task)
        from vpd.datasets import iter_examples

        bad: list[Any] = []
        for ex in iter_examples(run, bad):
            seen.setdefault(ex.id, ex)
        if stats is not None:
            for b in bad:
                stats.add(f"{b.path} line {b.line}", ValueError(b.error))
    files = sorted(run.glob("candidates-*.jsonl")) + [run / "verified.jsonl"]
    for file in files:
        if not file.is_file():
            continue
        for i, rec in enumerate(iter_jsonl(file, stats)):
            ex = rec.get("example")
            if not isinstance(ex, dict) or str(ex.get("id")) in seen:
                continue
            try:
                ex = dict(ex)
                ex["image"] = resolve_image(str(ex.get("image", "")), run)
                seen[str(ex["id"])] = Example.from_dict(ex)
            except (KeyError, TypeError, ValueError) as exc:
                if stats is not None:
                    stats.add(f"{file} record {i}", exc)
    return list(seen.values())


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> None:
    """Write records atomically (temp file + rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    with tmp.open("w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    os.replace(tmp, path)


def merge_report(run: str | Path, key: str, section: dict[str, Any]) -> Path:
    """Add ``section`` under ``key`` in ``RUN/report.json``, keeping every other stage's keys."""
    path = Path(run) / "report.json"
    data: dict[str, Any] = {}
    if path.is_file():
        try:
            loaded = json.loads(path.read_text())
            if isinstance(loaded, dict):
                data = loaded
        except (OSError, ValueError):
            data = {}
    data[key] = section
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(data, indent=2, ensure_ascii=False, default=str))
    os.replace(tmp, path)
    return path
