"""English phrasing shared by every text the project writes (captions, rationales, pretraining targets)."""

from __future__ import annotations

from typing import Iterable


def join_and(parts: Iterable[str]) -> str:
    """``"a, b and c"``; one part alone; ``""`` for none (callers choose their own word for nothing)."""
    parts = list(parts)
    if len(parts) <= 1:
        return "".join(parts)
    return ", ".join(parts[:-1]) + " and " + parts[-1]
