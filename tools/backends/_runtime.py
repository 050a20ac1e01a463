"""Runtime helpers shared by the model backends: device choice, precision, weight paths and hashes.

Conventions: ``device`` option ``"auto"`` (default) picks ``cuda`` when torch sees a GPU, else
``cpu``; ``half`` (default True) runs float16 on GPU only (CPU always float32). A weight path is
an existing local file/folder or a Hugging Face repo id already in the local HF cache (never
downloaded); anything else raises :class:`~vpd.tools.errors.MissingWeights` naming the config key.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path
from typing import Any

from vpd.tools.errors import MissingWeights

_HASH_BYTES = 4 << 20  # hash the first 4 MB of each weight file (+ its size)
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".onnx", ".ckpt", ".msgpack", ".gguf", ".pkl")
_hash_cache: dict[tuple[str, float, int], str] = {}


def pick_device(option: str | None = "auto") -> str:
    """``"auto"``/None -> ``"cuda"`` if available else ``"cpu"``; anything else is returned as given."""
    if option and option != "auto":
        return str(option)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str, half: bool = True):
    """float16 on a GPU when ``half``; float32 otherwise."""
    import torch

    return torch.float16 if (half and str(device).startswith("cuda")) else torch.float32


def resolve_weights(backend: str, key: str, value: Any, *, kind: str = "any", hint: str = "") -> Path:
    """The local path for option ``key`` of ``backend``; raises MissingWeights naming key and path.

    ``kind`` is ``"file"``, ``"dir"`` or ``"any"``. A value like ``org/name`` that is not a local
    path is looked up in the local Hugging Face cache (offline, no download).
    """
    if value is None or str(value).strip() == "":
        raise MissingWeights(backend, key, "<unset>", hint)
    text = os.path.expanduser(str(value))
    path = Path(text)
    if path.exists():
        if kind == "file" and not path.is_file():
            raise MissingWeights(backend, key, text, f"expected a file, found a folder. {hint}".strip())
        if kind == "dir" and not path.is_dir():
            raise MissingWeights(backend, key, text, f"expected a folder, found a file. {hint}".strip())
        return path
    if kind != "file" and not path.is_absolute() and text.count("/") == 1 and not text.startswith("."):
        cached = _hf_cached_snapshot(text)
        if cached is not None:
            return cached
    raise MissingWeights(backend, key, text, hint)


def _hf_cached_snapshot(repo_id: str) -> Path | None:
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:
        return None


def weights_found(backend: str, paths: dict[str, Any], kinds: dict[str, str] | None = None) -> str:
    """For ``vpd tools list``: ``'found: P'`` or ``'missing: key=P'`` over the given key -> path map."""
    found = []
    for key, value in paths.items():
        try:
            found.append(str(resolve_weights(backend, key, value, kind=(kinds or {}).get(key, "any"))))
        except MissingWeights:
            return f"missing: {key}={value}"
    return "found: " + ", ".join(found) if found else "n/a"


def weight_hash(*paths: str | Path) -> str:
    """sha1 (12 hex) over the weight files under ``paths``: name, size and first 4 MB of each (cached)."""
    h = hashlib.sha1()
    for p in paths:
        for f in _weight_files(Path(p)):
            h.update(f.name.encode())
            h.update(_file_hash(f).encode())
    return h.hexdigest()[:12]


def _weight_files(path: Path) -> list[Path]:
    if path.is_file():
        return [path]
    if not path.is_dir():
        return []
    files = sorted(f for f in path.rglob("*") if f.is_file() and f.suffix in _WEIGHT_SUFFIXES)
    return files or sorted(f for f in path.rglob("*") if f.is_file())


def _file_hash(path: Path) -> str:
    st = path.stat()
    key = (str(path.resolve()), st.st_mtime, st.st_size)
    if key not in _hash_cache:
        h = hashlib.sha1(str(st.st_size).encode())
        with open(path, "rb") as fh:
            h.update(fh.read(_HASH_BYTES))
        _hash_cache[key] = h.hexdigest()
    return _hash_cache[key]


def package_file_hash(module: str, *rel: str) -> str:
    """weight_hash of files shipped inside an installed package (e.g. packaged ONNX models)."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return ""
    root = Path(list(spec.submodule_search_locations)[0])
    return weight_hash(*(root / r for r in rel)) if rel else weight_hash(root)
