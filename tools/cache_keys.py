"""Canonical tool arguments and backend settings for tool-cache keys: two calls share a key only
when the backend would answer them identically.

A key is ``image hash | tool | canonical args | backend tag``; the tag
(:meth:`vpd.tools.backend.Backend.cache_tag`) is the backend name, its version, a digest of its
effective answer-changing settings (:func:`settings_digest`) and a full-content weight hash.

How far a text argument may be normalised depends on how the backend reads it, so each backend
declares it per tool (``Backend.text_args``, :data:`TEXT_MODES`); a backend that parses its
queries can go further and override ``Backend.canonical_args`` (the ``shapes`` backend maps
"a red circles" and "Red sphere" to one parsed query). Arguments a tool spec gives a default
(:attr:`vpd.tools.specs.ToolSpec.defaults`) are filled in first, so a default spelled out and one
left out are the same call.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Mapping

#: ``exact``: the string as given (safe for any backend; the default).
#: ``space``: leading/trailing whitespace stripped and inner runs collapsed to one space — for
#: backends that do exactly this to the text before using it (prompt *and* any echoed label).
#: ``fold``: ``space`` plus lower case — for backends that lower-case the text themselves and
#: never echo it back (uncased tokenisers, closed-set class lookup).
TEXT_MODES = ("exact", "space", "fold")


def normalise_text(value: str, mode: str) -> str:
    """``value`` normalised by ``mode`` (one of :data:`TEXT_MODES`)."""
    if mode == "exact":
        return value
    if mode == "space":
        return " ".join(value.split())
    if mode == "fold":
        return " ".join(value.lower().split())
    raise ValueError(f"unknown text mode {mode!r} (one of {', '.join(TEXT_MODES)})")


def normalise_value(value: Any, mode: str) -> Any:
    """Strings (also inside lists and dicts) normalised by ``mode``; other values unchanged."""
    if isinstance(value, str):
        return normalise_text(value, mode)
    if isinstance(value, (list, tuple)):
        return [normalise_value(v, mode) for v in value]
    if isinstance(value, dict):
        return {k: normalise_value(v, mode) for k, v in value.items()}
    return value


def with_defaults(defaults: Mapping[str, Any], args: Mapping[str, Any]) -> dict[str, Any]:
    """``args`` with the tool's omitted default arguments spelled out."""
    return {**dict(defaults), **dict(args)}


def args_json(args: Mapping[str, Any]) -> str:
    """Canonical JSON of (already normalised) arguments: sorted keys, tuples as lists."""
    return json.dumps(normalise_value(dict(args), "exact"), sort_keys=True, ensure_ascii=False, default=str)


def canonical_setting(value: Any) -> Any:
    """A setting as JSON-able data: sets sorted, tuples as lists, mappings with sorted keys."""
    if isinstance(value, (set, frozenset)):
        return sorted((canonical_setting(v) for v in value), key=lambda v: json.dumps(v, sort_keys=True, default=str))
    if isinstance(value, (list, tuple)):
        return [canonical_setting(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): canonical_setting(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)


def settings_digest(settings: Mapping[str, Any]) -> str:
    """12 hex digits of sha256 over the canonical JSON of a backend's effective key settings
    (``-`` when it has none): equal only when every answer-changing setting is equal."""
    if not settings:
        return "-"
    text = json.dumps(canonical_setting(dict(settings)), sort_keys=True, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:12]
