"""Where the Ray engine's shards land: committed ``candidates-NNNNN.jsonl`` files under a local folder
or any fsspec URI (``s3://…``, ``gs://…``).

A shard becomes visible only through :func:`commit_file`, one atomic move of a complete file, so a
file named after a shard is always whole; the other helpers list, count, number and clear those
files (used by :mod:`vpd.ray_engine` to skip committed shards, resume and overwrite).
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

SHARD_NAME = "candidates-{:05d}.jsonl"
_SHARD_RE = re.compile(r"^candidates-(\d{5})\.jsonl$")


def output_fs(uri: str) -> tuple[Any, str]:
    """The fsspec filesystem of ``uri`` and its root path (no trailing slash)."""
    import fsspec

    fs, root = fsspec.core.url_to_fs(uri)
    return fs, root.rstrip("/")


def is_local(out: str) -> bool:
    """True for a plain path or ``file://`` (the driver then rebuilds verified.jsonl / report.json)."""
    return "://" not in out or out.startswith("file://")


def shard_committed(out: str, shard: int) -> bool:
    """Whether shard number ``shard`` has a committed file under ``out``."""
    fs, root = output_fs(out)
    return fs.exists(f"{root}/{SHARD_NAME.format(shard)}")


def committed_shards(out: str) -> list[str]:
    """Names of the committed ``candidates-NNNNN.jsonl`` files under ``out`` (sorted)."""
    fs, root = output_fs(out)
    if not fs.exists(root):
        return []
    names = [p.rstrip("/").rsplit("/", 1)[-1] for p in fs.ls(root, detail=False)]
    return sorted(n for n in names if _SHARD_RE.match(n))


def next_shard_number(out: str) -> int:
    """One more than the highest committed shard number under ``out`` (0 when there is none)."""
    numbers = (int(m.group(1)) for n in committed_shards(out) if (m := _SHARD_RE.match(n)))
    return max(numbers, default=-1) + 1


def remove_shards(out: str, names: list[str]) -> None:
    """Delete the committed shard files ``names`` under ``out`` (``--overwrite`` of a remote run)."""
    fs, root = output_fs(out)
    for n in names:
        fs.rm(f"{root}/{n}")


def committed_ids(out: str) -> set[str]:
    """Ids of the examples whose candidate blocks are complete in the committed shards of ``out``."""
    from vpd.runs import _parse_blocks

    fs, root = output_fs(out)
    done: set[str] = set()
    for name in committed_shards(out):
        with fs.open(f"{root}/{name}", "rb") as fh:
            blocks, _ = _parse_blocks(fh.read())
        done.update(str(b[0]["example_id"]) for b in blocks)
    return done


def commit_file(local: Path, out: str, name: str) -> None:
    """Upload ``local`` to ``out/name`` atomically: write a unique temp name, then move it."""
    fs, root = output_fs(out)
    fs.makedirs(root, exist_ok=True)
    tmp = f"{root}/.{name}.tmp-{uuid.uuid4().hex}"
    fs.put_file(str(local), tmp)
    fs.mv(tmp, f"{root}/{name}")
