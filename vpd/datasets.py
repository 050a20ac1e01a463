"""Reading and writing example files (JSONL), tolerant of bad lines.

A dataset is a folder with ``examples.jsonl`` (one :class:`~vpd.types.Example` per line; extra
keys such as ``scene`` go into ``metadata``) and the images it names, paths relative to the folder.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from vpd.types import Example

_FIELDS = {"id", "image", "question", "answer", "choices", "qtype", "metadata"}


@dataclass(frozen=True, kw_only=True)
class BadLine:
    """A line of an example file that could not be read; recorded, never fatal."""

    path: str
    line: int
    error: str


def example_from_record(record: dict, root: Path | None = None) -> Example:
    """Build an :class:`Example` from a JSON record; unknown keys go into ``metadata``.

    Raises ValueError naming the missing field for malformed records.
    """
    if not isinstance(record, dict):
        raise ValueError(f"expected a JSON object, got {type(record).__name__}")
    for key in ("id", "image", "question"):
        if key not in record or record[key] in (None, ""):
            raise ValueError(f"missing field {key!r}")
    meta = dict(record.get("metadata") or {})
    meta.update({k: v for k, v in record.items() if k not in _FIELDS})
    image = str(record["image"])
    if root is not None and not Path(image).is_absolute():
        image = str(root / image)
    choices = record.get("choices")
    if choices is not None and not isinstance(choices, (list, tuple)):
        raise ValueError("field 'choices' must be a list or null")
    answer = record.get("answer")
    return Example(
        id=str(record["id"]), image=image, question=str(record["question"]),
        answer=None if answer is None else str(answer),
        choices=None if choices is None else tuple(str(c) for c in choices),
        qtype=str(record.get("qtype") or ""), metadata=meta,
    )


def iter_examples(path: str | Path, bad: list[BadLine] | None = None) -> Iterator[Example]:
    """Yield examples from ``path`` (a dataset folder or a ``.jsonl`` file).

    Image paths are resolved against the file's folder. Malformed lines are appended to ``bad``
    (if given) and skipped.
    """
    path = Path(path)
    file = path / "examples.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no examples file at {file}")
    root = file.parent
    with file.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                yield example_from_record(json.loads(line), root)
            except (json.JSONDecodeError, ValueError, TypeError) as exc:
                if bad is not None:
                    bad.append(BadLine(path=str(file), line=lineno, error=str(exc)))


def read_examples(path: str | Path) -> tuple[list[Example], list[BadLine]]:
    """All good examples of ``path`` and the bad lines."""
    bad: list[BadLine] = []
    return list(iter_examples(path, bad)), bad


def write_examples(examples: list[Example], file: str | Path, root: Path | None = None) -> None:
    """Write examples as JSONL (``metadata`` keys flattened back; image paths relative to ``root``)."""
    file = Path(file)
    file.parent.mkdir(parents=True, exist_ok=True)
    with file.open("w", encoding="utf-8") as fh:
        for ex in examples:
            rec = ex.to_dict()
            meta = rec.pop("metadata") or {}
            if root is not None:
                try:
                    rec["image"] = str(Path(rec["image"]).relative_to(root))
                except ValueError:
                    pass
            rec.update(meta)
            fh.write(json.dumps(rec, ensure_ascii=False) + "\n")
