"""Keep freed host memory mapped, so XLA:CPU's per-step scratch block is not page-faulted in anew.

XLA:CPU allocates all temporaries of one executable call as one block with ``malloc`` (about
200 MiB for a ``tiny`` training step at batch 16: the activations kept for the backward pass).
glibc serves any block above 32 MiB (its largest mmap threshold) with a fresh ``mmap`` and gives it
back with ``munmap`` on free, so every step first-touches the whole block again: ~50k minor page
faults, about a third of the step's CPU time, and the reason the backward pass looked ~5x the
forward in the full model but ~2.5x in a single block (whose scratch stayed under 32 MiB).

:func:`keep_freed_host_memory` sets ``M_MMAP_MAX=0`` (big blocks come from the heap), a 2 GiB trim
threshold (freed heap memory is kept) and ``M_ARENA_MAX=1`` (XLA's worker threads share the main
arena: a per-thread arena cannot hold a block above 64 MiB and would fall back to mmap). It affects
the whole process, so call it once at the start of a training program, before JAX's CPU backend
starts its threads (later calls still help threads created afterwards). Resident memory then
stays at its peak instead of shrinking between steps. A no-op off glibc or with
``VPD_KEEP_HOST_MEMORY=0``.
"""

from __future__ import annotations

import ctypes
import os
import platform

_M_TRIM_THRESHOLD, _M_MMAP_MAX, _M_ARENA_MAX = -1, -4, -8
_applied = False


def keep_freed_host_memory() -> bool:
    """Tune glibc malloc as above (once per process); True if the settings are in effect."""
    global _applied
    if _applied:
        return True
    if os.environ.get("VPD_KEEP_HOST_MEMORY", "1") == "0" or platform.system() != "Linux" \
            or platform.libc_ver()[0] != "glibc":
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return False
    ok = all(libc.mallopt(opt, value) == 1 for opt, value in
             ((_M_ARENA_MAX, 1), (_M_MMAP_MAX, 0), (_M_TRIM_THRESHOLD, 2**31 - 1)))
    _applied = ok
    return ok
