"""Where ``vpd adapt``'s students start: from scratch (a preset) or from a ``vpd pretrain`` base
(``vpd adapt --init BASE``, passed on as ``vpd train --init BASE``: the base's tokenizer and
architecture are kept, so a ``--preset`` naming another architecture is refused, never silently used)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

#: Student preset without ``--init``.
DEFAULT_PRESET = "tiny"
#: What a ``vpd pretrain`` base folder holds (``state/`` is the orbax checkpoint folder).
BASE_FILES = ("config.json", "tokenizer.json", "state", "pretrain.json")


class BaseFolderError(ValueError):
    """``--init`` is not a usable ``vpd pretrain`` base (or conflicts with ``--preset``)."""


def student_init(cfg: Any) -> dict[str, Any] | None:
    """The base the students start from, for the report: ``{"path" (absolute), "preset",
    "model_id", "weights_hash", "pretrain_steps"}``; None without ``cfg.init``.

    Raises :class:`BaseFolderError` naming the missing file when ``cfg.init`` is not a base folder,
    or when ``cfg.preset`` names another architecture than the base's (the base fixes it)."""
    if cfg.init is None:  # cfg: an AdaptConfig (init, preset)
        return None
    from vpd.evaluation import model_identity

    base = Path(cfg.init).resolve()
    if not base.is_dir():
        raise BaseFolderError(f"--init {cfg.init}: no such base folder (make one with `vpd pretrain --out BASE`)")
    missing = [f for f in BASE_FILES if not (base / f).exists()]
    if missing:
        raise BaseFolderError(f"--init {cfg.init} is not a `vpd pretrain` base: {', '.join(missing)} missing "
                              f"(a base holds {', '.join(BASE_FILES)})")
    try:
        meta = json.loads((base / "config.json").read_text())
        pre = json.loads((base / "pretrain.json").read_text())
    except json.JSONDecodeError as exc:
        raise BaseFolderError(f"--init {cfg.init}: unreadable config.json or pretrain.json ({exc})") from exc
    preset = (meta.get("model") or {}).get("preset") or pre.get("preset")
    if cfg.preset is not None and cfg.preset != preset:
        raise BaseFolderError(f"--preset {cfg.preset} conflicts with --init {cfg.init}: the base is a `{preset}` "
                              "model and fixes the students' architecture and tokenizer (drop --preset)")
    ident = model_identity(base)
    return {"path": str(base), "preset": preset, "model_id": ident.get("model_id"),
            "weights_hash": ident.get("weights_hash"), "pretrain_steps": pre.get("steps")}


def init_line(init: dict[str, Any] | None, preset: str) -> str:
    """The report's line on where the students started."""
    if init is None:
        return f"students trained from scratch (`{preset}` preset)"
    return (f"students initialised from {init['path']} (`{preset}` base, id {init.get('model_id') or '?'}, "
            f"{init.get('pretrain_steps')} pretraining steps)")
