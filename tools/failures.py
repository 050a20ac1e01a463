"""Tell a tool *backend* failure (infrastructure: CUDA out of memory, a missing weight file, a
model server that is down) apart from a failure the program caused (an unknown query word, a
bad argument, an unanswerable request).

A backend failure is not the program's fault: ``vpd synth`` files the candidate as ``tool_error``
(retryable on ``--resume``), never as the program's ``program_error``. The host marks such a
tool reply ``backend_failure: true``; the sandbox worker raises :class:`ToolBackendError`-named
errors for it, and the trace records the call's error as ``"ToolBackendError: <Type>: <msg>"``.

What counts (by the exception or anything in its ``__cause__``/``__context__`` chain):

* ``OSError`` (``FileNotFoundError``/:class:`~vpd.tools.errors.MissingWeights`, connection
  errors, timeouts), ``MemoryError``, ``ImportError``;
* exception classes named ``OutOfMemoryError`` (torch), ``APIError`` and its subclasses
  (openai), ``HTTPError``/``RequestException`` (requests), ``XlaRuntimeError`` (JAX);
* a ``RuntimeError`` whose message names the device runtime (CUDA, cuDNN, cuBLAS, NCCL,
  ``out of memory``, ``RESOURCE_EXHAUSTED``);
* any exception with a true ``backend_failure`` attribute (a backend's explicit declaration).

Everything else — :class:`~vpd.tools.errors.ToolError` raised for the request itself,
``TypeError``/``ValueError`` from arguments the program passed — is the program's.
"""

from __future__ import annotations

import re

#: Prefix of a backend failure's error text in traces and program errors.
BACKEND_FAILURE = "ToolBackendError"

_INFRA_TYPES = (OSError, MemoryError, ImportError)
_INFRA_NAMES = frozenset({"OutOfMemoryError", "APIError", "HTTPError", "RequestException", "XlaRuntimeError"})
_DEVICE_MESSAGE = re.compile(r"CUDA|cuDNN|CUBLAS|cublas|NCCL|out of memory|RESOURCE_EXHAUSTED|device-side assert")


def _one(exc: BaseException) -> bool:
    if getattr(exc, "backend_failure", False) is True:
        return True
    if isinstance(exc, _INFRA_TYPES):
        return True
    if any(c.__name__ in _INFRA_NAMES for c in type(exc).__mro__):
        return True
    return isinstance(exc, RuntimeError) and bool(_DEVICE_MESSAGE.search(str(exc)))


def is_backend_failure(exc: BaseException) -> bool:
    """True when ``exc`` (or an exception it was raised from/while handling) is an infrastructure
    failure of a tool backend (see the module docstring)."""
    seen: set[int] = set()
    cur: BaseException | None = exc
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if _one(cur):
            return True
        cur = cur.__cause__ or cur.__context__
    return False


def describe(exc: BaseException) -> str:
    """``"<Type>: <message>"`` (first 500 characters)."""
    return f"{type(exc).__name__}: {exc}"[:500]


def backend_failure_text(exc: BaseException) -> str:
    """The trace's error text for a backend failure: ``"ToolBackendError: <Type>: <message>"``."""
    return f"{BACKEND_FAILURE}: {describe(exc)}"


def is_backend_failure_text(error: str | None) -> bool:
    """True for an error text (a trace call's or a program's) that reports a backend failure."""
    return bool(error) and str(error).startswith(BACKEND_FAILURE)
