"""Runtime helpers shared by the model backends: device choice, precision, weight paths and hashes.

Conventions: ``device`` option ``"auto"`` (default) picks ``cuda`` when torch sees a GPU, else
``cpu``; ``dtype`` option ``"auto"`` (default) is bfloat16 on a GPU that supports it and float32
everywhere else; ``float16`` only when asked (``dtype: float16``, or the older ``half: true``). A
weight path is an existing local file/folder or a Hugging Face repo id already in the local HF cache
(never downloaded); anything else raises :class:`~vpd.tools.errors.MissingWeights` naming the config
key. Weight hashes read every byte (:mod:`vpd.tools.backends._weights`).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from vpd.tools.backends._weights import weight_hash
from vpd.tools.errors import MissingWeights, ToolError

#: ``dtype`` option values (``auto``: bfloat16 on a bf16-capable GPU, else float32).
DTYPES = ("auto", "float32", "bfloat16", "float16")


def pick_device(option: str | None = "auto") -> str:
    """``"auto"``/None -> ``"cuda"`` if available else ``"cpu"``; anything else is returned as given."""
    if option and option != "auto":
        return str(option)
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def pick_dtype(device: str, dtype: str = "auto"):
    """The torch dtype for option ``dtype`` (one of :data:`DTYPES`) on ``device``.

    ``auto``: bfloat16 on a CUDA device that supports it, float32 otherwise (CPU, older GPUs);
    an explicit ``float32`` / ``bfloat16`` / ``float16`` is used as given.
    """
    import torch

    name = str(dtype)
    if name not in DTYPES:
        raise ToolError(f"unknown dtype {name!r} (one of {', '.join(DTYPES)})")
    if name == "auto":
        if str(device).startswith("cuda") and torch.cuda.is_available() and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    return getattr(torch, name)


def dtype_option(options: dict[str, Any]) -> str:
    """The ``dtype`` option, with the older ``half`` folded in (``half: true`` asks for float16,
    ``half: false`` for float32); giving both is an error."""
    if "half" in options:
        if "dtype" in options:
            raise ToolError("give `dtype` or the older `half`, not both")
        return "float16" if bool(options["half"]) else "float32"
    return str(options.get("dtype", "auto"))


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


def package_file_hash(module: str, *rel: str) -> str:
    """weight_hash of files shipped inside an installed package (e.g. packaged ONNX models)."""
    import importlib.util

    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        return ""
    root = Path(list(spec.submodule_search_locations)[0])
    return weight_hash(*(root / r for r in rel)) if rel else weight_hash(root)
