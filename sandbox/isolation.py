"""What OS isolation a sandbox worker actually got, as the host records it.

A worker applies :data:`vpd.sandbox.limits.LAYERS` at start and reports each as active or not
(:func:`vpd.sandbox.limits.isolate`); :class:`Isolation` is that report, parsed defensively (it
comes from a process the host does not trust: unknown names are dropped, missing layers count as
inactive). :class:`vpd.sandbox.SandboxPool` warns (:class:`SandboxIsolationWarning`) when a layer
is missing and, with ``require_isolation=True`` (``vpd synth --require-isolation``), refuses to
run (:class:`IsolationError`).

``VPD_SANDBOX_SKIP`` (comma-separated layer names, or ``all``) turns layers off on purpose, e.g.
to debug a kernel that rejects one of them; a skipped layer is reported inactive like any other.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

from vpd.sandbox.limits import LAYERS

#: Environment variable naming layers the workers must not apply (``network,user`` or ``all``).
SKIP_ENV = "VPD_SANDBOX_SKIP"
_MAX_DETAIL = 300


class SandboxIsolationWarning(UserWarning):
    """A sandbox worker runs without one or more OS isolation layers."""


class IsolationError(RuntimeError):
    """Isolation was required (``require_isolation``) and a worker lacks a layer."""


def skip_from_env(value: str | None = None) -> tuple[str, ...]:
    """Layer names from ``VPD_SANDBOX_SKIP`` (or ``value``); ValueError naming an unknown one."""
    raw = os.environ.get(SKIP_ENV, "") if value is None else value
    names = [n.strip() for n in raw.split(",") if n.strip()]
    if "all" in names:
        return LAYERS
    unknown = [n for n in names if n not in LAYERS]
    if unknown:
        raise ValueError(f"{SKIP_ENV}: unknown sandbox layer(s) {', '.join(unknown)} (known: {', '.join(LAYERS)})")
    return tuple(n for n in LAYERS if n in names)


@dataclass(frozen=True, kw_only=True)
class Layer:
    """One isolation layer: ``name`` (one of ``LAYERS``), whether it is ``active``, what was done."""

    name: str
    active: bool
    detail: str


@dataclass(frozen=True, kw_only=True)
class Isolation:
    """The layers of one worker, in :data:`LAYERS` order."""

    layers: tuple[Layer, ...]

    @classmethod
    def from_report(cls, report: Any) -> "Isolation":
        """Parse a worker's ``ready`` report ``{layer: {"active": bool, "detail": str}}``."""
        report = report if isinstance(report, Mapping) else {}
        layers = []
        for name in LAYERS:
            entry = report.get(name)
            if isinstance(entry, Mapping) and type(entry.get("active")) is bool:
                detail = entry.get("detail")
                detail = detail[:_MAX_DETAIL] if type(detail) is str else ""
                layers.append(Layer(name=name, active=entry["active"], detail=detail))
            else:
                layers.append(Layer(name=name, active=False, detail="not reported by the worker"))
        return cls(layers=tuple(layers))

    @property
    def active(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers if layer.active)

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(layer.name for layer in self.layers if not layer.active)

    @property
    def complete(self) -> bool:
        return not self.missing

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(f"no sandbox layer {name!r} (known: {', '.join(LAYERS)})")

    def describe_missing(self) -> str:
        """``"network (unavailable: unshare failed (Operation not permitted)), user (…)"``."""
        return ", ".join(f"{layer.name} ({layer.detail})" for layer in self.layers if not layer.active)

    def to_dict(self) -> dict[str, Any]:
        """``{"complete", "active": [...], "missing": [...], "layers": {name: {"active", "detail"}}}``."""
        return {"complete": self.complete, "active": list(self.active), "missing": list(self.missing),
                "layers": {layer.name: {"active": layer.active, "detail": layer.detail} for layer in self.layers}}


def check(isolation: Isolation, *, required: bool, skipped: Iterable[str] = ()) -> None:
    """Raise :class:`IsolationError` when ``required`` and a layer is missing."""
    if required and not isolation.complete:
        skipped = tuple(skipped)
        hint = f" (skipped on request, by {SKIP_ENV} or skip_layers: {', '.join(skipped)})" if skipped else ""
        raise IsolationError(
            f"sandbox isolation required but missing: {isolation.describe_missing()}{hint}. Run as root on "
            "Linux with network namespaces permitted (CAP_SYS_ADMIN or unprivileged user namespaces), or drop "
            "--require-isolation to run with what is available.")
