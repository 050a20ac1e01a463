"""The run directory of ``vpd synth``: append-only, sharded, resumable, crash-safe.

Layout of ``runs/<name>/``::

    config.json             the command's configuration (written once; checked on --resume)
    manifest.json           config, versions, counts, sessions (rewritten atomically)
    candidates-00000.jsonl  one line per candidate: Candidate.to_dict() + "example" (the Example
                            dict) + "n_candidates" + "selected" (+ "prediction" without labels)
    verified.jsonl          one line per example with a chosen passing program:
                            {"example": {...}, "candidate": {...}}
    predictions.jsonl       (--no-labels) {"id", "prediction", "votes", "n_candidates"} and, when a
                            program was chosen, "chosen" (its index), "example" and "candidate"
    report.json             the summary (vpd.synth_report)

Crash safety. All candidates of one example are written with **one** ``write`` to the current
shard, followed by ``fsync``; that block is the example's completion marker: an example is done
only when all ``n_candidates`` lines (indices ``0 … n-1``) are present and whole. On open, the
tail of the last shard after the last complete block (a partial line, a half-written block) is
truncated away, and ``verified.jsonl`` / ``predictions.jsonl`` are rebuilt from the committed
blocks — so a SIGKILL at any point loses at most the example being written, and resuming never
duplicates anything.

Retries. An example may be committed again with ``write_example(..., replace=True)`` (``vpd synth
--resume`` redoing an example whose candidates failed for infrastructure reasons, see
:mod:`vpd.synth_failures`): its new block carries ``"attempt": n`` (the first has none, = 1) and
**supersedes** the earlier one for every reader — :meth:`RunStore.blocks`, ``verified.jsonl``,
``predictions.jsonl`` and the report see exactly one block per example, the highest attempt (the
first of equal attempts). Superseded blocks stay in the shards as history; nothing is rewritten.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from vpd.types import Candidate, Example

SHARD_RE = re.compile(r"^candidates-(\d{5})\.jsonl$")
RUN_FORMAT = "1"


class RunExistsError(FileExistsError):
    """The run directory already holds results and neither resume nor overwrite was asked for."""


class ConfigMismatchError(ValueError):
    """``--resume`` with a configuration that differs from the one the run was started with."""


@dataclass(frozen=True, kw_only=True)
class Block:
    """One example's committed candidates (plain dict lines, as stored)."""

    example_id: str
    lines: tuple[dict[str, Any], ...]
    shard: str

    @property
    def example(self) -> dict[str, Any]:
        return self.lines[0].get("example") or {}

    @property
    def attempt(self) -> int:
        """1 for an example's first commit, n for its (n-1)-th retry."""
        try:
            return int(self.lines[0].get("attempt") or 1)
        except (TypeError, ValueError):
            return 1

    def categories(self) -> list[str]:
        """Each candidate's failure category (``Verdict.category``), in index order."""
        return [str((ln.get("verdict") or {}).get("category", "none")) for ln in self.lines]

    def selected(self) -> dict[str, Any] | None:
        for line in self.lines:
            if line.get("selected"):
                return line
        return None


def _parse_blocks(data: bytes) -> tuple[list[list[dict[str, Any]]], int]:
    """Complete blocks in ``data`` and the byte offset just after the last one."""
    blocks: list[list[dict[str, Any]]] = []
    current: list[dict[str, Any]] = []
    good_end = 0
    pos = 0
    while pos < len(data):
        nl = data.find(b"\n", pos)
        if nl == -1:
            break  # a partial last line: ignored (and truncated on open)
        raw = data[pos:nl]
        pos = nl + 1
        try:
            line = json.loads(raw)
            eid, idx, n = str(line["example_id"]), int(line["index"]), int(line["n_candidates"])
        except (ValueError, KeyError, TypeError):
            current = []  # a torn block: drop what was gathered
            continue
        if current and (eid != current[0]["example_id"] or idx != len(current)):
            current = []
        if not current and idx != 0:
            continue
        current.append(line)
        if len(current) == n:
            blocks.append(current)
            current = []
            good_end = pos
    return blocks, good_end


class RunStore:
    """Reads and appends one run directory. Single writer; any number of readers."""

    def __init__(self, root: str | Path, *, shard_examples: int = 1000) -> None:
        self.root = Path(root)
        self.shard_examples = shard_examples
        self._fd: int | None = None
        self._shard: Path | None = None
        self._shard_count = 0
        self._done: set[str] = set()
        self._attempts: dict[str, int] = {}
        self._summary: dict[str, tuple[tuple[str, ...], bool]] = {}  # eid -> (categories, has a selected line)
        self._stale_derived = False
        self._verified_fd: int | None = None
        self._pred_fd: int | None = None

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, root: str | Path, config: dict[str, Any], *, resume: bool = False,
             overwrite: bool = False, check_keys: tuple[str, ...] = (), shard_examples: int = 1000,
             compare_as: Mapping[str, Callable[[Any], Any]] | None = None) -> "RunStore":
        """Create a run (or reopen it with ``resume``), repair a crashed tail, and get ready to append.

        ``check_keys``: config keys that must match the stored config on resume; ``compare_as``
        maps some of them to the function both values go through first (e.g. a sampler spec to
        its identity without options).
        """
        store = cls(root, shard_examples=shard_examples)
        store.root.mkdir(parents=True, exist_ok=True)
        has_results = any(store.shards()) or (store.root / "verified.jsonl").exists()
        if has_results and not resume:
            if not overwrite:
                raise RunExistsError(f"run directory {store.root} already has results; "
                                     "use --resume to continue it or --overwrite to start over")
            for p in store.shards() + [store.root / n for n in ("verified.jsonl", "predictions.jsonl",
                                                                   "report.json", "manifest.json")]:
                p.unlink(missing_ok=True)
        cfg_path = store.root / "config.json"
        if resume and cfg_path.exists():
            old = json.loads(cfg_path.read_text())
            def same(key: str) -> bool:
                a, b, norm = old.get(key), config.get(key), (compare_as or {}).get(key)
                return a == b or (norm is not None and a is not None and b is not None and norm(a) == norm(b))

            diff = [k for k in check_keys if not same(k)]
            if diff:
                raise ConfigMismatchError(
                    "cannot resume with a different configuration: "
                    + ", ".join(f"{k}: {old.get(k)!r} -> {config.get(k)!r}" for k in diff))
        atomic_write_json(cfg_path, {**config, "run_format": RUN_FORMAT})
        store._repair_and_index()
        return store

    def shards(self) -> list[Path]:
        return sorted(p for p in self.root.glob("candidates-*.jsonl") if SHARD_RE.match(p.name))

    def _repair_and_index(self) -> None:
        shards = self.shards()
        for i, shard in enumerate(shards):
            data = shard.read_bytes()
            parsed, good_end = _parse_blocks(data)
            if good_end < len(data):
                # a crash left a partial tail: cut it so appends start on a clean line
                with open(shard, "r+b") as fh:
                    fh.truncate(good_end)
                    fh.flush()
                    os.fsync(fh.fileno())
            if i == len(shards) - 1:
                self._shard, self._shard_count = shard, len(parsed)
        blocks = list(self.blocks())  # one per example: the latest attempt
        for b in blocks:
            self._index(b.example_id, b.attempt, b.lines)
        self._rebuild_derived(blocks)

    def _index(self, eid: str, attempt: int, lines: Any) -> None:
        self._done.add(eid)
        self._attempts[eid] = attempt
        cats = tuple(str((ln.get("verdict") or {}).get("category", "none")) for ln in lines)
        self._summary[eid] = (cats, any(bool(ln.get("selected")) for ln in lines))

    def _rebuild_derived(self, blocks: list[Block]) -> None:
        verified, preds = [], []
        for b in blocks:
            line = b.selected()
            if line is not None and line.get("verdict") and line["verdict"].get("lenient"):
                verified.append(_verified_record(line))
            if "prediction" in b.lines[0]:
                preds.append(_prediction_record(b.lines))
        atomic_write_lines(self.root / "verified.jsonl", verified)
        if preds or (self.root / "predictions.jsonl").exists():
            atomic_write_lines(self.root / "predictions.jsonl", preds)

    # -- state ------------------------------------------------------------------------------
    def done_ids(self) -> set[str]:
        """Ids of examples whose candidates are fully committed."""
        return set(self._done)

    def is_done(self, example_id: str) -> bool:
        return example_id in self._done

    def attempt(self, example_id: str) -> int:
        """The committed attempt of an example (0 if not committed)."""
        return self._attempts.get(example_id, 0)

    def failed_ids(self, retryable: Callable[[tuple[str, ...], bool], bool]) -> set[str]:
        """Committed examples for which ``retryable(categories, has_selected)`` is true (categories
        of the latest attempt's candidates, in index order)."""
        return {eid for eid, (cats, sel) in self._summary.items() if retryable(cats, sel)}

    # -- appending --------------------------------------------------------------------------
    def _shard_fd(self) -> int:
        if self._fd is not None and self._shard_count < self.shard_examples:
            return self._fd
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._shard is None or self._shard_count >= self.shard_examples:
            nums = [int(SHARD_RE.match(p.name).group(1)) for p in self.shards()]  # type: ignore[union-attr]
            self._shard = self.root / f"candidates-{(max(nums) + 1) if nums else 0:05d}.jsonl"
            self._shard_count = 0
        self._fd = os.open(self._shard, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        return self._fd

    def write_example(self, example: Example, candidates: list[Candidate], *,
                      selected: int | None = None, prediction: Any = None, votes: dict[str, int] | None = None,
                      with_prediction: bool = False, extra: list[dict[str, Any]] | None = None,
                      replace: bool = False, chosen: int | None = None) -> None:
        """Commit one example: all its candidates in one write + fsync, then its verified line.

        ``selected``: the index of the chosen passing candidate (or None). ``with_prediction``
        stores ``prediction``/``votes`` (the majority answer, for ``--no-labels``) and ``chosen``, the
        index of the candidate whose trace stands for it (unverified; not ``selected``).
        ``extra``: per-candidate extra keys merged into each line (e.g. ``duplicate_of``).
        ``replace``: commit an already committed example again (a retry); the new block
        supersedes the old one (see the module docstring). Committing twice otherwise is an error.
        """
        if not candidates:
            raise ValueError(f"example {example.id!r}: at least one candidate is needed")
        if example.id in self._done and not replace:
            raise ValueError(f"example {example.id!r} is already committed")
        attempt = self._attempts.get(example.id, 0) + 1
        ex = example.to_dict()
        n = len(candidates)
        lines = []
        for i, cand in enumerate(candidates):
            if cand.index != i or cand.example_id != example.id:
                raise ValueError(f"candidate {i} of {example.id!r} has index {cand.index} / id {cand.example_id!r}")
            rec = cand.to_dict()
            rec.update(extra[i] if extra else {})
            rec.update({"example": ex, "n_candidates": n, "selected": selected == i})
            if attempt > 1:
                rec["attempt"] = attempt
            if with_prediction:
                rec["prediction"] = prediction
                rec["votes"] = votes or {}
                rec["chosen"] = chosen
            lines.append(json.dumps(rec, ensure_ascii=False, sort_keys=True, default=str))
        data = ("\n".join(lines) + "\n").encode("utf-8")
        fd = self._shard_fd()
        _write_all(fd, data)
        os.fsync(fd)
        self._shard_count += 1
        self._index(example.id, attempt, [json.loads(line) for line in lines])
        if attempt > 1:  # the derived files hold the superseded block: rebuilt on close (and on open)
            self._stale_derived = True
            return
        if selected is not None:
            cand = json.loads(lines[selected])
            if cand.get("verdict") and cand["verdict"].get("lenient"):
                self._append("verified", _verified_record(cand))
        if with_prediction:
            self._append("predictions", _prediction_record([json.loads(line) for line in lines]))

    def _append(self, which: str, record: dict[str, Any]) -> None:
        attr = f"_{'verified' if which == 'verified' else 'pred'}_fd"
        fd = getattr(self, attr)
        if fd is None:
            fd = os.open(self.root / f"{which}.jsonl", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            setattr(self, attr, fd)
        _write_all(fd, (json.dumps(record, ensure_ascii=False, sort_keys=True, default=str) + "\n").encode())
        os.fsync(fd)

    def write_manifest(self, manifest: dict[str, Any]) -> None:
        atomic_write_json(self.root / "manifest.json", manifest)

    def read_manifest(self) -> dict[str, Any]:
        p = self.root / "manifest.json"
        return json.loads(p.read_text()) if p.exists() else {}

    def write_report(self, report: dict[str, Any]) -> None:
        atomic_write_json(self.root / "report.json", report)

    def close(self) -> None:
        for attr in ("_fd", "_verified_fd", "_pred_fd"):
            fd = getattr(self, attr)
            if fd is not None:
                os.close(fd)
                setattr(self, attr, None)
        if self._stale_derived:
            self._rebuild_derived(list(self.blocks()))
            self._stale_derived = False

    def __enter__(self) -> "RunStore":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reading ----------------------------------------------------------------------------
    def blocks(self) -> Iterator[Block]:
        """Committed examples in first-commit order, one block each: the latest attempt (torn
        tails skipped; of equal attempts the first)."""
        latest: dict[str, Block] = {}
        for shard in self.shards():
            parsed, _ = _parse_blocks(shard.read_bytes())
            for lines in parsed:
                block = Block(example_id=str(lines[0]["example_id"]), lines=tuple(lines), shard=shard.name)
                old = latest.get(block.example_id)
                if old is None or block.attempt > old.attempt:
                    latest[block.example_id] = block
        yield from latest.values()


def read_candidates(root: str | Path) -> Iterator[tuple[Example, Candidate, dict[str, Any]]]:
    """Every committed candidate of a run as ``(example, candidate, raw_line)``."""
    for block in RunStore(root).blocks():
        ex = Example.from_dict(block.example)
        for line in block.lines:
            yield ex, Candidate.from_dict(line), line


def read_verified(root: str | Path) -> Iterator[tuple[Example, Candidate]]:
    """``verified.jsonl`` as ``(example, chosen candidate)`` pairs (partial lines skipped)."""
    path = Path(root) / "verified.jsonl"
    if not path.exists():
        return
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            try:
                rec = json.loads(line)
                yield Example.from_dict(rec["example"]), Candidate.from_dict(rec["candidate"])
            except (ValueError, KeyError, TypeError):
                continue


def _verified_record(line: dict[str, Any]) -> dict[str, Any]:
    cand = {k: v for k, v in line.items()
            if k not in ("example", "n_candidates", "selected", "prediction", "votes", "chosen")}
    return {"example": line["example"], "candidate": cand}


def _prediction_record(lines: list[dict[str, Any]] | tuple[dict[str, Any], ...]) -> dict[str, Any]:
    first = lines[0]
    rec = {"id": first["example_id"], "prediction": first.get("prediction"), "votes": first.get("votes", {}),
           "n_candidates": first.get("n_candidates", len(lines))}
    chosen = first.get("chosen")
    if isinstance(chosen, int) and 0 <= chosen < len(lines):
        rec.update(chosen=chosen, **_verified_record(lines[chosen]))
    return rec


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def atomic_write_json(path: Path, data: Any) -> None:
    """Write JSON via a temp file + fsync + rename (readers never see half a file)."""
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=2, sort_keys=True, default=str)
        fh.write("\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)


def atomic_write_lines(path: Path, records: list[dict[str, Any]]) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    with open(tmp, "w", encoding="utf-8") as fh:
        for r in records:
            fh.write(json.dumps(r, ensure_ascii=False, sort_keys=True, default=str) + "\n")
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
