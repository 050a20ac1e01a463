"""vpd.sandbox: untrusted programs run isolated, fast, and traced by the host.

>>> from vpd.sandbox import run_program, SandboxPool, ExecutionResult
>>> run_program("def execute_command(image):\n    return 1 + 1").answer   # doctest: +SKIP
2

Exports are loaded lazily so that the worker (``python -m vpd.sandbox.worker``) imports only what
it needs (no PIL, no tool backends).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__all__ = ["ExecutionResult", "Isolation", "IsolationError", "SandboxIsolationWarning", "SandboxPool",
           "SandboxUnavailable", "default_pool", "run_program"]

if TYPE_CHECKING:  # pragma: no cover
    from vpd.sandbox.isolation import Isolation, IsolationError, SandboxIsolationWarning
    from vpd.sandbox.pool import SandboxPool, default_pool, run_program
    from vpd.sandbox.result import ExecutionResult
    from vpd.sandbox.worker_slot import SandboxUnavailable


def __getattr__(name: str) -> Any:
    if name == "ExecutionResult":
        from vpd.sandbox.result import ExecutionResult

        return ExecutionResult
    if name in ("Isolation", "IsolationError", "SandboxIsolationWarning"):
        from vpd.sandbox import isolation

        return getattr(isolation, name)
    if name in ("SandboxPool", "default_pool", "run_program"):
        from vpd.sandbox import pool

        return getattr(pool, name)
    if name == "SandboxUnavailable":
        from vpd.sandbox.worker_slot import SandboxUnavailable

        return SandboxUnavailable
    raise AttributeError(f"module 'vpd.sandbox' has no attribute {name!r}")
