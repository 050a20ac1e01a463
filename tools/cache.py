"""The tool-result cache: an in-memory LRU in front of an on-disk SQLite store.

Keys are :meth:`vpd.tools.Toolbox.cache_key` strings — image content hash, tool, normalised
arguments, and the backend's tag: name + version + a digest of its effective answer-changing
settings (thresholds, prompts, ``max_new_tokens``, dtype …; :attr:`Backend.key_settings
<vpd.tools.backend.Backend.key_settings>`) + a full-content weight hash — so a result is reused
across programs, runs and processes exactly when the same backend would compute it again. Values are the tool's JSON
result (never None).

The SQLite file uses WAL journaling and a busy timeout, so many threads (one connection each) and
many processes may read and write it at once. Plug it in with ``vpd.tools.load(spec, cache=ToolCache(path))``
or ``Toolbox(…, cache=…)``. A corrupt or unwritable store degrades to memory-only with a warning;
it never fails a tool call.
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
import threading
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

_log = logging.getLogger(__name__)

#: Bump when the stored value format or the key scheme changes; older rows are then ignored.
#: 2: per-backend argument normalisation (``Backend.canonical_args``) instead of lower-casing all.
#: 3: backend tags carry a digest of the effective answer-changing settings and a full-content weight hash.
CACHE_FORMAT = "3"


def default_cache_path() -> Path:
    """``$VPD_CACHE_DIR/tools.sqlite`` (default ``~/.cache/vpd/tools.sqlite``)."""
    root = os.environ.get("VPD_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "vpd")
    return Path(root) / "tools.sqlite"


@dataclass(frozen=True, kw_only=True)
class CacheStats:
    """Counts since this cache object was made (per process)."""

    hits: int
    memory_hits: int
    disk_hits: int
    misses: int
    puts: int

    @property
    def lookups(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate(self) -> float:
        return self.hits / self.lookups if self.lookups else 0.0

    def to_dict(self) -> dict[str, float]:
        return {"hits": self.hits, "memory_hits": self.memory_hits, "disk_hits": self.disk_hits,
                "misses": self.misses, "puts": self.puts, "hit_rate": round(self.hit_rate, 4)}


class ToolCache:
    """LRU (``capacity`` entries) + optional SQLite file at ``path`` (``None`` = memory only).

    Thread-safe; safe across processes sharing ``path``. Picklable (the connection is reopened).
    """

    def __init__(self, path: str | Path | None = None, *, capacity: int = 50_000,
                 timeout_s: float = 30.0) -> None:
        self.path = Path(path) if path is not None else None
        self.capacity = capacity
        self.timeout_s = timeout_s
        self._init_runtime()

    def _init_runtime(self) -> None:
        self._lock = threading.Lock()
        self._mem: OrderedDict[str, Any] = OrderedDict()
        self._local = threading.local()
        self._counts = {"hits": 0, "memory_hits": 0, "disk_hits": 0, "misses": 0, "puts": 0}
        self._disk_ok = self.path is not None
        if self._disk_ok:
            try:
                self._conn()
            except (sqlite3.Error, OSError) as exc:
                _log.warning("tool cache %s unusable (%s); using memory only", self.path, exc)
                self._disk_ok = False

    def __getstate__(self) -> dict[str, Any]:
        return {"path": self.path, "capacity": self.capacity, "timeout_s": self.timeout_s}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._init_runtime()

    # -- sqlite -----------------------------------------------------------------------------
    def _conn(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        if conn is not None and getattr(self._local, "pid", None) == os.getpid():
            return conn
        assert self.path is not None
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(self.path), timeout=self.timeout_s, isolation_level=None,
                               check_same_thread=False)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute("PRAGMA synchronous=NORMAL")
        conn.execute("CREATE TABLE IF NOT EXISTS results (key TEXT PRIMARY KEY, value TEXT NOT NULL, "
                     "format TEXT NOT NULL)")
        self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    def _disk_get(self, key: str) -> Any | None:
        if not self._disk_ok:
            return None
        try:
            row = self._conn().execute("SELECT value FROM results WHERE key = ? AND format = ?",
                                       (key, CACHE_FORMAT)).fetchone()
        except sqlite3.Error as exc:
            _log.warning("tool cache read failed (%s)", exc)
            return None
        if row is None:
            return None
        try:
            return json.loads(row[0])
        except json.JSONDecodeError:
            return None

    def _disk_put(self, key: str, value: Any) -> None:
        if not self._disk_ok:
            return
        try:
            self._conn().execute("INSERT OR REPLACE INTO results (key, value, format) VALUES (?, ?, ?)",
                                 (key, json.dumps(value, ensure_ascii=False), CACHE_FORMAT))
        except sqlite3.Error as exc:
            _log.warning("tool cache write failed (%s)", exc)

    # -- memory -----------------------------------------------------------------------------
    def _remember(self, key: str, value: Any) -> None:
        self._mem[key] = value
        self._mem.move_to_end(key)
        while len(self._mem) > self.capacity:
            self._mem.popitem(last=False)

    # -- API --------------------------------------------------------------------------------
    def get(self, key: str) -> Any | None:
        """The cached JSON result for ``key`` or None (a miss)."""
        with self._lock:
            if key in self._mem:
                self._mem.move_to_end(key)
                self._counts["hits"] += 1
                self._counts["memory_hits"] += 1
                return self._mem[key]
        value = self._disk_get(key)
        with self._lock:
            if value is None:
                self._counts["misses"] += 1
                return None
            self._counts["hits"] += 1
            self._counts["disk_hits"] += 1
            self._remember(key, value)
        return value

    def put(self, key: str, value: Any) -> None:
        """Store a JSON-serialisable result (None is ignored: it means "no result")."""
        if value is None:
            return
        with self._lock:
            self._counts["puts"] += 1
            self._remember(key, value)
        self._disk_put(key, value)

    def __len__(self) -> int:
        """Entries on disk (or in memory when memory-only)."""
        if self._disk_ok:
            try:
                return int(self._conn().execute("SELECT COUNT(*) FROM results").fetchone()[0])
            except sqlite3.Error:
                pass
        return len(self._mem)

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(**self._counts)

    def clear_memory(self) -> None:
        """Forget the in-memory LRU (the disk store stays)."""
        with self._lock:
            self._mem.clear()

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            conn.close()
            self._local.conn = None


def open_cache(spec: str | Path | None) -> ToolCache | None:
    """``"off"``/``"none"`` -> no cache; ``"memory"`` -> memory only; ``"default"``/None -> the
    shared store at :func:`default_cache_path`; anything else is a path to a SQLite file."""
    if spec is None or str(spec) == "default":
        return ToolCache(default_cache_path())
    text = str(spec)
    if text.lower() in ("off", "none", "no"):
        return None
    if text.lower() == "memory":
        return ToolCache(None)
    return ToolCache(Path(text))
