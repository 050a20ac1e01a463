"""Multi-host training: start JAX's own distributed runtime before anything touches a device.

``jax.distributed.initialize`` must run before the first JAX computation of a process (model
init, ``jax.devices()`` …), so it cannot wait for the mesh to be built. Run ``vpd train`` on every
host through this module::

    python -m vpd.cli.multihost train --data DS --model tiny --out CKPT --mesh data=4,fsdp=2 …

Where the coordinator comes from, in order:

* ``JAX_COORDINATOR_ADDRESS`` (``HOST:PORT`` of process 0), ``JAX_NUM_PROCESSES``,
  ``JAX_PROCESS_ID`` — set them yourself (plain SSH, Ray, Kubernetes);
* ``VPD_MULTIHOST=auto`` — JAX's auto-detection: Cloud TPU pod slices, SLURM (``srun``), Open MPI
  (``mpirun``) fill everything in;
* neither — single host, nothing is initialised.

Every process then sees the global device list (``jax.devices()``), so ``--mesh`` names the
*global* mesh (``data * fsdp`` = all devices of all hosts), and each process feeds its rows of
the global batch. :func:`initialize` also marks :mod:`vpd.distill.vlm_sharding` as initialised
so its own (late) hook does not try again.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True, kw_only=True)
class MultihostSpec:
    """How this process joins the job (``mode``: ``env`` | ``auto`` | ``single``)."""

    mode: str
    coordinator: str | None = None
    num_processes: int | None = None
    process_id: int | None = None


def spec_from_env(environ: dict[str, str] | None = None) -> MultihostSpec:
    """Read the launch variables (see the module docstring); raises on a half-set configuration."""
    env = dict(os.environ if environ is None else environ)
    addr = env.get("JAX_COORDINATOR_ADDRESS")
    if addr:
        missing = [k for k in ("JAX_NUM_PROCESSES", "JAX_PROCESS_ID") if not env.get(k)]
        if missing:
            raise ValueError(f"JAX_COORDINATOR_ADDRESS is set but {', '.join(missing)} is not")
        n, pid = int(env["JAX_NUM_PROCESSES"]), int(env["JAX_PROCESS_ID"])
        if not 0 <= pid < n:
            raise ValueError(f"JAX_PROCESS_ID={pid} must be in [0, JAX_NUM_PROCESSES={n})")
        return MultihostSpec(mode="env", coordinator=addr, num_processes=n, process_id=pid)
    if env.get("VPD_MULTIHOST", "").lower() == "auto":
        return MultihostSpec(mode="auto")
    return MultihostSpec(mode="single")


def initialize(spec: MultihostSpec | None = None) -> dict[str, Any]:
    """Join the distributed job described by ``spec`` (default: the environment); idempotent.

    Returns ``{"mode", "process_index", "process_count", "local_devices", "global_devices"}``.
    """
    import jax

    from vpd.distill import vlm_sharding

    spec = spec or spec_from_env()
    if spec.mode != "single" and not vlm_sharding._initialized:
        if spec.mode == "env":
            jax.distributed.initialize(coordinator_address=spec.coordinator, num_processes=spec.num_processes,
                                       process_id=spec.process_id)
        else:
            jax.distributed.initialize()
        vlm_sharding._initialized = True
    return {"mode": spec.mode, "process_index": jax.process_index(), "process_count": jax.process_count(),
            "local_devices": jax.local_device_count(), "global_devices": jax.device_count()}


def is_primary() -> bool:
    """True on process 0 (the one that should print and write shared files)."""
    import jax

    return jax.process_index() == 0


def gather_to_host(tree: Any) -> Any:
    """``jax.device_get`` that also works for arrays sharded over other hosts' devices (FSDP across
    hosts): those are all-gathered first (every process must call this, collectively)."""
    import jax
    import numpy as np
    from jax.experimental import multihost_utils

    def get(x: Any) -> Any:
        if isinstance(x, jax.Array) and not x.is_fully_addressable:
            return np.asarray(multihost_utils.process_allgather(x, tiled=True))
        return jax.device_get(x)

    return jax.tree.map(get, tree)
