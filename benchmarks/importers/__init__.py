"""Converters from official dataset releases into vpd's examples format (``vpd data import``).

One registry, :data:`IMPORTERS`, addressed by name (``vqav2``, ``okvqa``, ``gqa``, ``aokvqa``,
``tallyqa``, ``ocrvqa``, ``pope``, ``mmbench``). Every importer reads the release files as
published, keeps the labels (all annotator answers where the benchmark has several, in
``metadata["answers"]``) and points at the images where they lie on disk (absolute paths; nothing
is downloaded or copied, except MMBench's base64 images, which are decoded into ``OUT/images/``).

Bad records (missing image, no answer, unknown split, malformed) are never dropped silently:
each becomes a :class:`BadRecord` in ``OUT/import_report.json`` and a console line. Test splits
published without answers (each importer's ``unlabelled`` splits) are imported with ``answer``
null and reported as ``unlabelled_split``, not as bad records.

>>> report = run_import("vqav2", "/data/vqa", split="val", out="data/vqav2-val")  # doctest: +SKIP
"""

from __future__ import annotations

import importlib

from vpd.benchmarks.importers.base import (
    IMPORTERS, BadRecord, ImportContext, ImportReport, ImportSourceError, run_import,
)

#: Modules that register importers (imported on the first lookup).
_MODULES = ("vqa", "gqa", "aokvqa", "tallyqa", "ocrvqa", "pope", "mmbench")


def load_importers() -> None:
    """Import every importer module (registration happens at import)."""
    for mod in _MODULES:
        importlib.import_module(f"vpd.benchmarks.importers.{mod}")


def importer_names() -> list[str]:
    load_importers()
    return IMPORTERS.names()


__all__ = ["IMPORTERS", "BadRecord", "ImportContext", "ImportReport", "ImportSourceError", "importer_names",
           "load_importers", "run_import"]
