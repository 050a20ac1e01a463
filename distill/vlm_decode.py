"""Batched decoding for the student: greedy or sampling, with a KV cache under ``jit``.

Prompts are left-padded (see :func:`vpd.distill.vlm_preprocess.encode_prompts`), so every row's
next token goes into the same cache slot. The whole loop (prefill + ``lax.while_loop`` over steps,
stopping early once every row has produced ``<eos>``) is one compiled function. A no-cache path,
which re-runs the full sequence each step, exists as the baseline for the benchmark and as a
correctness check (greedy outputs must agree).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx
from jaxtyping import Array, Bool, Float, Int

from vpd.distill.vlm_model import PaliGemma


@dataclass(frozen=True, kw_only=True)
class SamplingConfig:
    """``temperature == 0`` is greedy; ``top_k > 0`` keeps the k most likely tokens before sampling."""

    max_new_tokens: int = 32
    temperature: float = 0.0
    top_k: int = 0
    seed: int = 0


def _pick(logits: Float[Array, "B V"], key: Array, temperature: float, top_k: int) -> Int[Array, "B"]:
    if temperature <= 0.0:
        return jnp.argmax(logits, axis=-1).astype(jnp.int32)
    logits = logits.astype(jnp.float32) / temperature
    if top_k > 0:
        kth = jax.lax.top_k(logits, top_k)[0][:, -1:]
        logits = jnp.where(logits < kth, -jnp.inf, logits)
    return jax.random.categorical(key, logits, axis=-1).astype(jnp.int32)


@partial(jax.jit, static_argnames=("graphdef", "max_new", "temperature", "top_k", "eos", "pad"))
def _generate_cached(graphdef, state, pixels, tokens, valid, key, *, max_new, temperature, top_k, eos, pad):
    model: PaliGemma = nnx.merge(graphdef, state)
    b, p = tokens.shape
    start = model.config.num_image_tokens + p  # cache slot of the first generated token
    logits, cache = model.prefill(pixels, tokens, valid, start + max_new)
    key, sub = jax.random.split(key)
    first = _pick(logits, sub, temperature, top_k)
    out = jnp.full((b, max_new), pad, jnp.int32).at[:, 0].set(first)
    done = first == eos

    def cond(carry):
        i, _, _, _, done, _ = carry
        return (i < max_new) & ~jnp.all(done)

    def body(carry):
        i, tok, cache, out, done, key = carry
        logits, cache = model.decode_step(tok, cache, start + i - 1)
        key, sub = jax.random.split(key)
        nxt = jnp.where(done, pad, _pick(logits, sub, temperature, top_k))
        out = jax.lax.dynamic_update_slice(out, nxt[:, None], (0, i))
        return i + 1, nxt, cache, out, done | (nxt == eos), key

    carry = (jnp.int32(1), first, cache, out, done, key)
    return jax.lax.while_loop(cond, body, carry)[3]


@partial(jax.jit, static_argnames=("graphdef", "max_new", "temperature", "top_k", "eos", "pad"))
def _generate_uncached(graphdef, state, pixels, tokens, valid, key, *, max_new, temperature, top_k, eos, pad):
    model: PaliGemma = nnx.merge(graphdef, state)
    b, p = tokens.shape
    seq = jnp.concatenate([tokens, jnp.full((b, max_new), pad, jnp.int32)], axis=1)
    seq_valid = jnp.concatenate([valid, jnp.zeros((b, max_new), bool)], axis=1)
    suffix = jnp.concatenate([jnp.zeros((b, p), bool), jnp.ones((b, max_new), bool)], axis=1)

    def cond(carry):
        i, _, _, done, _ = carry
        return (i < max_new) & ~jnp.all(done)

    def body(carry):
        i, seq, seq_valid, done, key = carry
        logits = model(pixels, seq, seq_valid, suffix)  # the full sequence, every step
        last = jax.lax.dynamic_index_in_dim(logits, p + i - 1, axis=1, keepdims=False)
        key, sub = jax.random.split(key)
        nxt = jnp.where(done, pad, _pick(last, sub, temperature, top_k))
        seq = jax.lax.dynamic_update_slice(seq, nxt[:, None], (0, p + i))
        seq_valid = jax.lax.dynamic_update_slice(seq_valid, (~done)[:, None], (0, p + i))
        return i + 1, seq, seq_valid, done | (nxt == eos), key

    carry = (jnp.int32(0), seq, seq_valid, jnp.zeros((b,), bool), key)
    return jax.lax.while_loop(cond, body, carry)[1][:, p:]


def generate(model: PaliGemma, pixels: Float[np.ndarray, "B S S 3"], tokens: Int[np.ndarray, "B P"],
             valid: Bool[np.ndarray, "B P"], sampling: SamplingConfig = SamplingConfig(), *,
             use_cache: bool = True) -> Int[np.ndarray, "B N"]:
    """Generated token ids ``[B, max_new_tokens]`` (``pad`` after each row's ``<eos>``)."""
    graphdef, state = nnx.split(model)
    fn = _generate_cached if use_cache else _generate_uncached
    cfg = model.config
    out = fn(graphdef, state, jnp.asarray(pixels), jnp.asarray(tokens, jnp.int32), jnp.asarray(valid, bool),
             jax.random.key(sampling.seed), max_new=sampling.max_new_tokens,
             temperature=float(sampling.temperature), top_k=int(sampling.top_k), eos=cfg.eos_id, pad=cfg.pad_id)
    return np.asarray(out)
