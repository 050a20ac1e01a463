"""The synth run's ``manifest.json``: :func:`build_manifest` writes the config, the versions (vpd,
checkers, prompt and the run's prompt fingerprint), the tools, the sampler and the counts;
:func:`save_session` records one session's counters there (checkpointed during the run); and the
resume checks that read it, :func:`previous_llm` and :func:`check_prompt_unchanged`.
"""

from __future__ import annotations

import time
from typing import Any

from vpd.checkers import checker_versions
from vpd.runs import RunStore
from vpd.synth_config import SessionStats, SynthConfig


def build_manifest(cfg: SynthConfig, store: RunStore, counts: dict[str, Any], toolbox: Any, sampler: Any,
                   started: float, *, prompt_fingerprint: str | None = None) -> dict[str, Any]:
    """The run's manifest as of this session: config, versions, tools, sampler and counts, keeping the
    stored manifest's creation time, sessions and first prompt fingerprint (and its tools / sampler
    when none is given)."""
    import vpd

    old = store.read_manifest()
    versions: dict[str, Any] = {"vpd": getattr(vpd, "__version__", ""), "checkers": checker_versions()}
    try:
        from vpd.programs.prompt import PROMPT_VERSION

        versions["prompt"] = PROMPT_VERSION
    except ImportError:
        pass
    # the first session's fingerprint stays the run's (sessions record their own)
    fp = (old.get("versions") or {}).get("prompt_fingerprint") or prompt_fingerprint
    if fp:
        versions["prompt_fingerprint"] = fp
    return {
        "stage": "synth", "config": cfg.to_dict(), "versions": versions,
        "tools": toolbox.describe() if toolbox is not None else old.get("tools", {}),
        "sampler": sampler.describe() if hasattr(sampler, "describe") else old.get("sampler", {}),
        "counts": {**counts, "done": len(store.done_ids())},
        "created": old.get("created", started), "sessions": old.get("sessions", []),
    }


def save_session(store: RunStore, cfg: SynthConfig, counts: dict[str, Any], sampler: Any, started: float,
                 stats: SessionStats, toolbox: Any, pending: int) -> None:
    """Write this session's counters into the manifest (replacing its earlier checkpoint)."""
    tstats: dict[str, Any] = dict(toolbox.stats) if toolbox is not None else {}
    cache = getattr(toolbox, "cache", None)
    if cache is not None and hasattr(cache, "stats"):
        tstats["cache"] = cache.stats().to_dict()
    if toolbox is not None and hasattr(toolbox, "batch_stats"):
        tstats["batches"] = toolbox.batch_stats()
    session = {"started": started, "finished": time.time(), **stats.to_dict(), "toolbox": tstats,
               "pending_at_start": pending}
    manifest = store.read_manifest() or build_manifest(cfg, store, counts, None, sampler, started)
    sessions = [s for s in manifest.get("sessions", []) if s.get("started") != started]
    manifest["sessions"] = sessions + [session]
    manifest["counts"] = {**counts, "done": len(store.done_ids())}
    store.write_manifest(manifest)


def previous_llm(store: RunStore, llm: str) -> str | None:
    """The spec of the run's last session (or first config), when it differs from ``llm``."""
    manifest = store.read_manifest()
    sessions = manifest.get("sessions") or []
    prev = sessions[-1].get("llm") if sessions else None
    prev = prev or (manifest.get("config") or {}).get("llm")
    return prev if prev and prev != llm else None


def check_prompt_unchanged(store: RunStore, cfg: SynthConfig, fingerprint: str | None) -> None:
    """On ``--resume``: refuse to go on with prompts that differ from the run's first session's
    (an edited API docstring or library example), unless ``cfg.allow_prompt_change``."""
    old = (store.read_manifest().get("versions") or {}).get("prompt_fingerprint")
    if not cfg.resume or cfg.allow_prompt_change or fingerprint is None or old is None or old == fingerprint:
        return
    from vpd.runs import ConfigMismatchError

    raise ConfigMismatchError(
        f"cannot resume: the program prompt changed since this run started ({old} -> {fingerprint}: the "
        "tool API section or the few-shot library differs). Finish it with the vpd version that started it, "
        "or pass --allow-prompt-change to mix both (each session records its fingerprint).")
