"""Which images a student was trained on, by content, and whether an evaluation reuses them.

An image is identified by the sha256 of its file's bytes (the same picture under another path or
name is the same image). Records:

* ``vpd mix`` writes the hashes of every image its mixture holds into ``DS/manifest.json``
  (``image_sha256``: ``{"train": [...], "val": [...]}``; for LSKD rows the clean original image,
  not the copy with regions drawn) — :func:`mixture_image_record`;
* ``vpd train`` writes ``CKPT/training_images.json`` (:data:`TRAINING_IMAGES_FILE`): the mixture's
  hashes (train and val, plus a base checkpoint's own record when it was initialised from one) —
  :func:`record_training_images`;
* ``vpd eval --model CKPT`` compares the evaluated images with that record and refuses when they
  overlap (:class:`TrainingOverlapError`), or with ``allow`` reports the overlap as a warning —
  :func:`check_training_overlap`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

TRAINING_IMAGES_FILE = "training_images.json"
HASH = "sha256"
_CHUNK = 1 << 20


class TrainingOverlapError(ValueError):
    """The evaluated images include images the student was trained on."""


def file_sha256(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    h = hashlib.sha256()
    with Path(path).open("rb") as fh:
        for chunk in iter(lambda: fh.read(_CHUNK), b""):
            h.update(chunk)
    return h.hexdigest()


def hash_images(paths: Iterable[str]) -> tuple[dict[str, str], list[str]]:
    """``{path: sha256}`` for the readable ones and the paths that could not be read."""
    hashes: dict[str, str] = {}
    unreadable: list[str] = []
    for p in dict.fromkeys(str(p) for p in paths):
        try:
            hashes[p] = file_sha256(p)
        except OSError:
            unreadable.append(p)
    return hashes, unreadable


def mixture_image_record(images: Mapping[str, Iterable[str]]) -> tuple[dict[str, list[str]], list[str]]:
    """(``{split: sorted distinct hashes}``, unreadable paths) for a mixture's images per split."""
    out: dict[str, list[str]] = {}
    unreadable: list[str] = []
    for split, paths in images.items():
        hashes, bad = hash_images(paths)
        out[split] = sorted(set(hashes.values()))
        unreadable += bad
    return out, unreadable


def _mixture_dir(data: str | Path) -> Path:
    data = Path(data)
    return data if data.is_dir() else data.parent


def _records_images(data: str | Path) -> list[str]:
    """Every image (and LSKD row's clean image) named by a mixture's ``train.jsonl``/``val.jsonl``."""
    root = _mixture_dir(data)
    files = [Path(data)] if Path(data).is_file() else [root / "train.jsonl", root / "val.jsonl"]
    paths: list[str] = []
    for file in files:
        if not file.is_file():
            continue
        for line in file.read_text(encoding="utf-8", errors="replace").splitlines():
            try:
                rec = json.loads(line)
                paths.append(str(rec["image"]))
                regions = rec.get("regions") or {}
                if regions.get("image"):
                    paths.append(str(regions["image"]))
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
    return paths


def training_image_hashes(data: str | Path) -> dict[str, Any]:
    """The image record of a mixture (folder or its ``train.jsonl``): from its manifest when it has
    one (``source: manifest``), else hashed from its rows' images (``source: rows``)."""
    root = _mixture_dir(data)
    try:
        manifest = json.loads((root / "manifest.json").read_text())
    except (OSError, ValueError):
        manifest = {}
    per_split = manifest.get("image_sha256") if isinstance(manifest, dict) else None
    if isinstance(per_split, dict) and per_split:
        hashes = sorted({h for hs in per_split.values() for h in hs})
        return {"hash": HASH, "mixture": str(root.resolve()), "split": manifest.get("split"), "source": "manifest",
                "sha256": hashes}
    found, unreadable = hash_images(_records_images(data))
    return {"hash": HASH, "mixture": str(root.resolve()), "split": None, "source": "rows",
            "sha256": sorted(set(found.values())), "unreadable": len(unreadable)}


def record_training_images(data: str | Path, out: str | Path, init: str | Path | None = None) -> Path:
    """Write ``out/training_images.json``: the images of mixture ``data`` and, when ``init`` is a
    checkpoint with its own record, the images it was trained on (``from_init``)."""
    rec = training_image_hashes(data)
    base = read_training_images(init) if init is not None and Path(init).is_dir() else None
    if base is not None:
        rec["from_init"] = str(Path(init).resolve())  # type: ignore[arg-type]
        rec["sha256"] = sorted(set(rec["sha256"]) | set(base))
    path = Path(out) / TRAINING_IMAGES_FILE
    path.write_text(json.dumps(rec, indent=1))
    return path


def read_training_images(ckpt: str | Path) -> set[str] | None:
    """The hashes of the images a checkpoint was trained on, or None when it has no record.

    A checkpoint without :data:`TRAINING_IMAGES_FILE` (trained before the record existed) falls
    back to the manifest of the mixture its ``config.json`` names, when that still records hashes."""
    try:
        rec = json.loads((Path(ckpt) / TRAINING_IMAGES_FILE).read_text())
        return {str(h) for h in rec["sha256"]}
    except (OSError, ValueError, KeyError, TypeError):
        pass
    try:
        data = json.loads((Path(ckpt) / "config.json").read_text())["data"]
        per_split = json.loads((_mixture_dir(data) / "manifest.json").read_text())["image_sha256"]
        return {str(h) for hs in per_split.values() for h in hs}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None


@dataclass(frozen=True, kw_only=True)
class OverlapReport:
    """What :func:`check_training_overlap` found (``checked`` False: the checkpoint has no record)."""

    checked: bool
    images: int = 0  # distinct evaluated image paths
    overlapping: int = 0  # of them, trained on
    examples: tuple[str, ...] = field(default_factory=tuple)  # a few overlapping paths

    def message(self) -> str:
        if not self.checked:
            return (f"training images unknown (no {TRAINING_IMAGES_FILE} in the checkpoint): overlap "
                    "with the evaluated images not checked")
        shown = ", ".join(self.examples)
        return (f"{self.overlapping} of {self.images} evaluated images are training images of this student "
                f"(same sha256 as an image of its mixture), e.g. {shown}")


def check_training_overlap(ckpt: str | Path, images: Iterable[str], *, allow: bool = False) -> OverlapReport:
    """Compare evaluated ``images`` with checkpoint ``ckpt``'s training images by content.

    Raises :class:`TrainingOverlapError` on any overlap unless ``allow`` (then the report says so)."""
    trained = read_training_images(ckpt)
    paths = list(dict.fromkeys(str(p) for p in images))
    if trained is None:
        return OverlapReport(checked=False, images=len(paths))
    hashes, _ = hash_images(paths)
    hits = [p for p, h in hashes.items() if h in trained]
    report = OverlapReport(checked=True, images=len(paths), overlapping=len(hits), examples=tuple(hits[:3]))
    if hits and not allow:
        raise TrainingOverlapError(
            f"refusing to evaluate {ckpt}: {report.message()}. Evaluate on a held-out split (e.g. --split test "
            "with a mixture made from --split train), or pass --allow-overlap to score anyway (with a warning).")
    return report
