"""The importer registry, its records and the writer shared by every importer.

An importer is a generator ``read(ctx) -> Iterator[Example | BadRecord]`` registered with the
splits its release has. :func:`run_import` streams its output into ``OUT/examples.jsonl`` (the
format :mod:`vpd.datasets` reads; image paths absolute), writes ``OUT/import_report.json`` (counts
and every bad record with its original fields) and ``OUT/dataset.json`` (what was imported from
where), and calls ``on_bad`` once per bad record so the CLI can print a line for each.

A split registered in ``unlabelled`` (the test splits whose release ships no answers) is imported
with ``answer`` null: :attr:`ImportContext.unlabelled` tells the importer not to report the
missing answers as ``no answer``, and the report says ``unlabelled_split`` with the count of
``unlabelled`` examples (for ``vpd synth --no-labels --split SPLIT``).
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

from vpd.registry import Registry
from vpd.types import JSON, Example

REPORT_FILE = "import_report.json"
#: Reasons a record is not imported (keys of :attr:`ImportReport.bad_by_reason`).
MISSING_IMAGE, NO_ANSWER, UNKNOWN_SPLIT, MALFORMED, DUPLICATE = (
    "missing image", "no answer", "unknown split", "malformed record", "duplicate id")


class ImportSourceError(ValueError):
    """The release files cannot be used at all (not found, not the expected format, unknown split)."""


@dataclass(frozen=True, kw_only=True)
class BadRecord:
    """A source record that was not imported: ``reason`` (one of the constants above), where it is
    (``file``, ``record_id``), a ``detail`` sentence and the original ``record`` (image payloads removed)."""

    record_id: str
    reason: str
    file: str
    detail: str = ""
    record: dict[str, JSON] = field(default_factory=dict)

    def line(self) -> str:
        """One console line."""
        return f"bad record {self.record_id} ({self.file}): {self.reason}" + (f": {self.detail}" if self.detail else "")

    def to_dict(self) -> dict[str, JSON]:
        return {"record_id": self.record_id, "reason": self.reason, "file": self.file,
                "detail": self.detail, "record": self.record}


@dataclass(frozen=True, kw_only=True)
class ImportContext:
    """What an importer reads: ``source`` (the release file or folder), the ``split`` asked for,
    ``images`` (image root; default: ``source`` if a folder, else its folder), ``out`` and
    ``unlabelled`` (the release of this split has no answers: write examples with ``answer`` null)."""

    source: Path
    split: str
    out: Path
    images: Path | None = None
    unlabelled: bool = False

    @property
    def image_root(self) -> Path:
        if self.images is not None:
            return self.images
        return self.source if self.source.is_dir() else self.source.parent

    def find(self, *patterns: str) -> Path:
        """``source`` itself if a file, else the first file in it matching a pattern (glob, ``{split}``
        filled in); ImportSourceError naming the patterns when none matches."""
        if self.source.is_file():
            return self.source
        if not self.source.is_dir():
            raise ImportSourceError(f"no such file or folder: {self.source}")
        for pat in patterns:
            hits = sorted(self.source.glob(pat.format(split=self.split)))
            if hits:
                return hits[0]
        pats = ", ".join(p.format(split=self.split) for p in patterns)
        raise ImportSourceError(f"{self.source}: no file matching {pats}")


Reader = Callable[[ImportContext], Iterator["Example | BadRecord"]]


@dataclass(frozen=True, kw_only=True)
class Importer:
    """A registered converter: its ``name``, the ``splits`` of the release (``unlabelled``: those
    published without answers) and its ``read`` generator."""

    name: str
    splits: tuple[str, ...]
    read: Reader
    layout: str = ""  # the release files and image layout it expects (shown by the CLI)
    unlabelled: tuple[str, ...] = ()


IMPORTERS: Registry[Importer] = Registry("importer")


def register_importer(name: str, *, splits: tuple[str, ...], layout: str,
                      unlabelled: tuple[str, ...] = ()) -> Callable[[Reader], Reader]:
    """Decorator: register ``read`` as the importer ``name``; ``unlabelled``: the splits (of
    ``splits``) whose official files carry no answers."""
    if not set(unlabelled) <= set(splits):
        raise ValueError(f"{name}: unlabelled splits {unlabelled} not all in {splits}")

    def deco(read: Reader) -> Reader:
        IMPORTERS.add(name, Importer(name=name, splits=splits, read=read, layout=layout, unlabelled=unlabelled))
        return read

    return deco


@dataclass(frozen=True, kw_only=True)
class ImportReport:
    """The outcome of one import: counts and every bad record. ``unlabelled_split``: the split's
    release has no answers, so its examples are written unlabelled (not reported as bad)."""

    importer: str
    split: str
    source: str
    out: str
    examples: int
    labelled: int
    multi_answer: int  # examples with several annotator answers in metadata["answers"]
    bad: tuple[BadRecord, ...] = ()
    unlabelled_split: bool = False

    @property
    def unlabelled(self) -> int:
        """Examples written without an answer."""
        return self.examples - self.labelled

    @property
    def bad_by_reason(self) -> dict[str, int]:
        return dict(sorted(Counter(b.reason for b in self.bad).items()))

    def summary(self) -> dict[str, JSON]:
        return {"importer": self.importer, "split": self.split, "source": self.source, "out": self.out,
                "examples": self.examples, "labelled": self.labelled, "unlabelled": self.unlabelled,
                "unlabelled_split": self.unlabelled_split, "multi_answer": self.multi_answer,
                "bad": len(self.bad), "bad_by_reason": self.bad_by_reason}

    def to_dict(self) -> dict[str, JSON]:
        return {**self.summary(), "bad_records": [b.to_dict() for b in self.bad]}


def image_or_bad(path: Path, record_id: str, file: str, record: dict[str, JSON]) -> str | BadRecord:
    """The absolute image path, or a ``missing image`` BadRecord when no file is there."""
    if path.is_file():
        return str(path.resolve())
    return BadRecord(record_id=record_id, reason=MISSING_IMAGE, file=file, detail=f"no file at {path}",
                     record=record)


def load_json(path: Path) -> JSON:
    try:
        with path.open(encoding="utf-8") as fh:
            return json.load(fh)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImportSourceError(f"{path}: not readable JSON ({exc})") from None


def _example_line(ex: Example) -> str:
    rec = ex.to_dict()
    meta = rec.pop("metadata") or {}
    rec.update(meta)
    return json.dumps(rec, ensure_ascii=False)


def run_import(name: str, source: str | Path, *, split: str, out: str | Path, images: str | Path | None = None,
               on_bad: Callable[[BadRecord], None] | None = None) -> ImportReport:
    """Convert the release at ``source`` (split ``split``) into ``out``; see the module docstring.

    Raises :class:`ImportSourceError` when the release cannot be read at all or ``split`` is not one
    of the importer's splits; per-record problems become bad records instead.
    """
    from vpd.benchmarks.importers import load_importers

    load_importers()
    imp = IMPORTERS.get(name)
    if split not in imp.splits:
        raise ImportSourceError(f"unknown split {split!r} for {name} (use {', '.join(imp.splits)})")
    ctx = ImportContext(source=Path(source), split=split, out=Path(out),
                        images=Path(images) if images is not None else None, unlabelled=split in imp.unlabelled)
    ctx.out.mkdir(parents=True, exist_ok=True)
    bad: list[BadRecord] = []
    counts = [0, 0, 0]
    tmp = ctx.out / "examples.jsonl.partial"
    try:
        _write(imp.read(ctx), tmp, ctx, bad, on_bad, counts)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    n, labelled, multi = counts
    tmp.replace(ctx.out / "examples.jsonl")
    report = ImportReport(importer=name, split=split, source=str(ctx.source), out=str(ctx.out), examples=n,
                          labelled=labelled, multi_answer=multi, bad=tuple(bad), unlabelled_split=ctx.unlabelled)
    (ctx.out / REPORT_FILE).write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False) + "\n")
    meta = {"generator": f"vpd data import {name}", "layout": imp.layout,
            "image_root": str(ctx.image_root.resolve()), **report.summary()}
    (ctx.out / "dataset.json").write_text(json.dumps(meta, indent=2) + "\n")
    return report


def _write(records: Iterator[Example | BadRecord], tmp: Path, ctx: ImportContext, bad: list[BadRecord],
           on_bad: Callable[[BadRecord], None] | None, counts: list[int]) -> None:
    """Stream examples into ``tmp``; bad records (and duplicate ids) into ``bad``. ``counts``:
    examples, labelled, multi-answer (updated in place)."""
    seen: set[str] = set()
    with tmp.open("w", encoding="utf-8") as fh:
        for rec in records:
            if isinstance(rec, Example) and rec.id in seen:
                rec = BadRecord(record_id=rec.id, reason=DUPLICATE, file=str(ctx.source),
                                detail="an earlier record has this id; kept the first", record=rec.to_dict())
            if isinstance(rec, BadRecord):
                bad.append(rec)
                if on_bad is not None:
                    on_bad(rec)
                continue
            seen.add(rec.id)
            fh.write(_example_line(rec) + "\n")
            counts[0] += 1
            counts[1] += rec.answer is not None
            answers = rec.metadata.get("answers")
            counts[2] += isinstance(answers, list) and len(answers) > 1
