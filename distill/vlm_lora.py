"""LoRA as a wrapper: :func:`apply_lora` swaps ``nnx.Linear`` layers for :class:`LoRALinear`, which
holds the original layer and adds ``x @ A @ B * alpha / r``. Which layers (:data:`LORA_TARGETS`):
``decoder`` — the decoder's attention and MLP projections (the default); ``all`` — every linear
layer of the model (vision attention and MLP, the projector, the decoder; VPD's recipe).

``A`` (``[in, r]``, small random) and ``B`` (``[r, out]``, zeros, so the wrapped model starts
identical) are ``nnx.LoRAParam``; training with LoRA differentiates only those
(``trainable_filter``). The base weights are untouched, so the wrapper can be stripped or merged.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from vpd.distill.vlm_model import PaliGemma

TARGETS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")
LORA_TARGETS = ("decoder", "all")


class LoRALinear(nnx.Module):
    """``base(x) + (x @ lora_a @ lora_b) * (alpha / rank)``."""

    def __init__(self, base: nnx.Linear, rank: int, alpha: float, *, rngs: nnx.Rngs) -> None:
        self.base = base
        self.rank = rank
        self.scale = alpha / rank
        d_in, d_out = base.kernel.shape
        self.lora_a = nnx.LoRAParam(jax.random.normal(rngs.params(), (d_in, rank)) / jnp.sqrt(d_in))
        self.lora_b = nnx.LoRAParam(jnp.zeros((rank, d_out)))

    def __call__(self, x):
        a = self.lora_a[...].astype(x.dtype)
        b = self.lora_b[...].astype(x.dtype)
        return self.base(x) + (x @ a @ b) * jnp.asarray(self.scale, x.dtype)


def apply_lora(model: PaliGemma, rank: int, alpha: float | None = None, seed: int = 0,
               targets: str = "decoder") -> PaliGemma:
    """Wrap the ``targets`` layers (:data:`LORA_TARGETS`) in place (rank ``rank``); returns ``model``."""
    if rank <= 0:
        raise ValueError("LoRA rank must be positive")
    if targets not in LORA_TARGETS:
        raise ValueError(f"LoRA targets must be one of {', '.join(LORA_TARGETS)}, not {targets!r}")
    rngs = nnx.Rngs(seed)
    alpha = float(alpha if alpha is not None else rank)
    if targets == "all":
        _wrap_all(model, rank, alpha, rngs)
        return model
    for block in model.layers:
        for owner in (block, block.self_attn):
            for name in TARGETS:
                layer = getattr(owner, name, None)
                if isinstance(layer, nnx.Linear):
                    setattr(owner, name, LoRALinear(layer, rank, alpha, rngs=rngs))
    return model


def _wrap_all(module: nnx.Module, rank: int, alpha: float, rngs: nnx.Rngs) -> None:
    """Wrap every ``nnx.Linear`` reachable from ``module`` (attributes and ``nnx.List`` items)."""
    for name, value in list(vars(module).items()):
        if isinstance(value, LoRALinear):
            continue
        if isinstance(value, nnx.Linear):
            setattr(module, name, LoRALinear(value, rank, alpha, rngs=rngs))
        elif isinstance(value, nnx.Module):
            _wrap_all(value, rank, alpha, rngs)
        elif isinstance(value, (nnx.List, list, tuple)):
            for item in value:
                if isinstance(item, nnx.Module) and not isinstance(item, nnx.Linear):
                    _wrap_all(item, rank, alpha, rngs)


def trainable_filter(lora_rank: int):
    """What the optimizer updates: LoRA params only when LoRA is on, else all params."""
    return nnx.LoRAParam if lora_rank > 0 else nnx.Param
