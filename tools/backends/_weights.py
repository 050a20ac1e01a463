"""Full-content weight hashes, each file read once per version.

:func:`weight_hash` digests every byte of the weight files under the given paths (a checkpoint file,
or every non-hidden file of a checkpoint folder: weights, configs, tokenizer and processor files all
change answers). A file's digest (sha256) is memoised by ``(absolute path, size, mtime_ns)`` in
process and in a small SQLite file next to the tool cache (``$VPD_CACHE_DIR/weight-hashes.sqlite``,
default ``~/.cache/vpd``), so a 20 GB checkpoint is read once, not once per process; editing or
replacing the file (new size or mtime) re-hashes it. An unusable memo file degrades to the in-process
memo with a warning; it never fails a backend.
"""

from __future__ import annotations

import hashlib
import logging
import os
import sqlite3
import threading
from pathlib import Path

_log = logging.getLogger(__name__)

_CHUNK = 1 << 20  # bytes read per step
_memo: dict[tuple[str, int, int], str] = {}
_memo_lock = threading.Lock()
#: Files hashed by reading them (not served from a memo) in this process, for tests and logs.
STATS = {"files_read": 0, "bytes_read": 0}


def memo_path() -> Path:
    """``$VPD_CACHE_DIR/weight-hashes.sqlite`` (default ``~/.cache/vpd/weight-hashes.sqlite``)."""
    root = os.environ.get("VPD_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "vpd")
    return Path(root) / "weight-hashes.sqlite"


def _disk(op: str, key: tuple[str, int, int], digest: str = "") -> str | None:
    """Read (``op="get"``) or write (``"put"``) one memo row; None (and a warning) when unusable."""
    path = memo_path()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), timeout=30.0, isolation_level=None)
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS digests (path TEXT, size INTEGER, mtime_ns INTEGER, "
                         "sha256 TEXT NOT NULL, PRIMARY KEY (path, size, mtime_ns))")
            if op == "get":
                row = conn.execute("SELECT sha256 FROM digests WHERE path = ? AND size = ? AND mtime_ns = ?",
                                   key).fetchone()
                return str(row[0]) if row else None
            conn.execute("INSERT OR REPLACE INTO digests VALUES (?, ?, ?, ?)", (*key, digest))
            return digest
        finally:
            conn.close()
    except (sqlite3.Error, OSError) as exc:
        _log.warning("weight-hash memo %s unusable (%s); hashing in process only", path, exc)
        return None


def file_digest(path: str | Path) -> str:
    """sha256 (hex) of all bytes of ``path``, memoised by (absolute path, size, mtime_ns)."""
    p = Path(path).resolve()
    st = p.stat()
    key = (str(p), int(st.st_size), int(st.st_mtime_ns))
    with _memo_lock:
        hit = _memo.get(key)
    if hit is not None:
        return hit
    digest = _disk("get", key)
    if digest is None:
        h = hashlib.sha256()
        with open(p, "rb") as fh:
            while chunk := fh.read(_CHUNK):
                h.update(chunk)
        digest = h.hexdigest()
        with _memo_lock:
            STATS["files_read"] += 1
            STATS["bytes_read"] += key[1]
        _disk("put", key, digest)
    with _memo_lock:
        _memo[key] = digest
    return digest


def forget_memo() -> None:
    """Drop the in-process memo (the on-disk one stays): as a fresh process would start."""
    with _memo_lock:
        _memo.clear()


def weight_files(path: Path) -> list[Path]:
    """``path`` itself if a file; else every file under it, hidden ones (``.git``, ``.cache``) excluded."""
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    return sorted(f for f in path.rglob("*")
                  if f.is_file() and not any(part.startswith(".") for part in f.relative_to(path).parts))


def weight_hash(*paths: str | Path) -> str:
    """12 hex digits of sha256 over (relative name, full-content digest) of every weight file under ``paths``."""
    h = hashlib.sha256()
    for p in paths:
        root = Path(p)
        for f in weight_files(root):
            name = f.name if f == root else f.relative_to(root).as_posix()
            h.update(name.encode() + b"\0" + file_digest(f).encode() + b"\n")
    return h.hexdigest()[:12]
