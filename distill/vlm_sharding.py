"""Device mesh and sharding rules for training: ``data`` x ``fsdp`` (``jax.sharding.Mesh``).

* Batches are split along their first axis over both axes (``P(("data", "fsdp"))``): every
  device sees a different slice of the batch.
* Parameters and optimizer state are sharded FSDP-style: each array's largest axis divisible by
  the ``fsdp`` size is split over ``fsdp`` (replicated over ``data``); small or indivisible arrays
  are replicated. XLA inserts the all-gathers and reduce-scatters.

Multi-host: when ``JAX_COORDINATOR_ADDRESS``, ``JAX_NUM_PROCESSES`` and ``JAX_PROCESS_ID`` are set
(one process per host, e.g. launched by Ray or SLURM), :func:`make_mesh` first calls
``jax.distributed.initialize`` with them, so the mesh spans all hosts' devices. Each process then
feeds its own rows of the global batch (:func:`global_batch`).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

_initialized = False


@dataclass(frozen=True, kw_only=True)
class MeshSpec:
    """Axis sizes; ``data * fsdp`` must equal the number of devices used."""

    data: int = 1
    fsdp: int = 1

    @classmethod
    def parse(cls, text: str | None) -> "MeshSpec":
        """``"data=2,fsdp=2"`` -> MeshSpec(data=2, fsdp=2); empty -> 1x1."""
        if not text:
            return cls()
        sizes = {}
        for part in text.split(","):
            name, _, value = part.partition("=")
            name = name.strip()
            if name not in ("data", "fsdp") or not value.strip().isdigit():
                raise ValueError(f"bad mesh spec {text!r}; expected e.g. 'data=2,fsdp=2'")
            sizes[name] = int(value)
        return cls(**sizes)

    @property
    def size(self) -> int:
        return self.data * self.fsdp


def maybe_initialize_distributed() -> bool:
    """Call ``jax.distributed.initialize`` once if the multi-host env vars are set; True if it did."""
    global _initialized
    addr = os.environ.get("JAX_COORDINATOR_ADDRESS")
    if _initialized or not addr:
        return _initialized
    jax.distributed.initialize(coordinator_address=addr,
                               num_processes=int(os.environ["JAX_NUM_PROCESSES"]),
                               process_id=int(os.environ["JAX_PROCESS_ID"]))
    _initialized = True
    return True


def make_mesh(spec: MeshSpec) -> Mesh:
    """A ``(data, fsdp)`` mesh over the first ``spec.size`` devices (all hosts' when distributed)."""
    maybe_initialize_distributed()
    devices = jax.devices()
    if spec.size > len(devices):
        raise ValueError(f"mesh data={spec.data},fsdp={spec.fsdp} needs {spec.size} devices, only "
                         f"{len(devices)} available (on CPU: XLA_FLAGS=--xla_force_host_platform_device_count=N)")
    return Mesh(np.asarray(devices[: spec.size]).reshape(spec.data, spec.fsdp), ("data", "fsdp"))


def param_spec(shape: tuple[int, ...], fsdp: int) -> P:
    """FSDP partition of one array: its largest axis divisible by ``fsdp`` (if any), else replicated."""
    if fsdp <= 1 or not shape:
        return P()
    for axis in sorted(range(len(shape)), key=lambda a: -shape[a]):
        if shape[axis] % fsdp == 0 and shape[axis] >= fsdp:
            spec: list = [None] * len(shape)
            spec[axis] = "fsdp"
            return P(*spec)
    return P()


def tree_shardings(mesh: Mesh, tree):
    """NamedShardings for every array leaf of ``tree`` (params or optimizer state)."""
    fsdp = mesh.shape["fsdp"]
    return jax.tree.map(lambda x: NamedSharding(mesh, param_spec(tuple(np.shape(x)), fsdp)), tree)


def batch_sharding(mesh: Mesh) -> NamedSharding:
    """Batches shaped ``[accum, rows, …]``: rows split over both mesh axes."""
    return NamedSharding(mesh, P(None, ("data", "fsdp")))


def global_batch(mesh: Mesh, batch: dict[str, np.ndarray]) -> dict[str, jax.Array]:
    """Place a host batch ``[accum, rows, …]`` (the full global batch, identical on every process)
    on the mesh; each process contributes its own block of rows."""
    sharding = batch_sharding(mesh)
    n, pid = jax.process_count(), jax.process_index()
    if n == 1:
        return jax.device_put(batch, sharding)

    def put(x: np.ndarray) -> jax.Array:
        rows = x.shape[1] // n
        return jax.make_array_from_process_local_data(sharding, x[:, pid * rows:(pid + 1) * rows], x.shape)

    return {k: put(v) for k, v in batch.items()}
