"""LoRA as a wrapper: :func:`apply_lora` swaps the decoder's attention and MLP ``nnx.Linear``
layers for :class:`LoRALinear`, which holds the original layer and adds ``x @ A @ B * alpha / r``.

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


def apply_lora(model: PaliGemma, rank: int, alpha: float | None = None, seed: int = 0) -> PaliGemma:
    """Wrap the decoder's attention and MLP projections in place (rank ``rank``); returns ``model``."""
    if rank <= 0:
        raise ValueError("LoRA rank must be positive")
    rngs = nnx.Rngs(seed)
    alpha = float(alpha if alpha is not None else rank)
    for block in model.layers:
        for owner in (block, block.self_attn):
            for name in TARGETS:
                layer = getattr(owner, name, None)
                if isinstance(layer, nnx.Linear):
                    setattr(owner, name, LoRALinear(layer, rank, alpha, rngs=rngs))
    return model


def trainable_filter(lora_rank: int):
    """What the optimizer updates: LoRA params only when LoRA is on, else all params."""
    return nnx.LoRAParam if lora_rank > 0 else nnx.Param
