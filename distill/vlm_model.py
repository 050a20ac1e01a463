"""The student: PaliGemma architecture in Flax NNX (SigLIP ViT -> linear projector -> Gemma).

Numerics follow transformers' ``PaliGemmaForConditionalGeneration`` (checked by a parity test):

* vision: conv patch embedding (``patch_size`` px, stride = patch), learnt position embeddings,
  pre-LayerNorm blocks (MHA with biases, GELU-tanh MLP), final LayerNorm; no pooling head;
* projector: one ``Linear(vision.width -> text.width)`` with bias; image features are *not*
  scaled (only text embeddings are multiplied by ``sqrt(text.width)``);
* decoder: Gemma, RMSNorm ``x * rsqrt(mean(x^2) + eps) * (1 + w)``, RoPE (rotate-half form),
  multi-query/grouped attention, GeGLU MLP (tanh GELU), logits tied to the embedding;
* sequence = ``[image tokens][text tokens]``; positions are 1-based over valid tokens
  (``cumsum(valid)``), so padding may sit anywhere;
* prefix-LM mask: a query ``i`` sees key ``j`` iff ``j`` is valid and (``j <= i`` or both are in
  the prefix, i.e. not ``suffix``). Image tokens are always prefix.

The KV cache (for :mod:`vpd.distill.vlm_decode`) is a dict of arrays: ``k``/``v`` of shape
``[layers, B, S, kv_heads, head_dim]``, ``valid`` ``[B, S]`` and ``pos`` ``[B]`` (the position of
the last written token).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx
from jaxtyping import Array, Bool, Float, Int

from vpd.distill.grid_targets import box_bins_of, groups
from vpd.distill.vlm_config import TextConfig, VisionConfig, VLMConfig

_NEG = -2.3819763e38  # large negative for masked attention logits (fits float32)
Cache = dict[str, Array]


def _gelu(x: Array) -> Array:
    return jax.nn.gelu(x, approximate=True)


def _dense(layer, x: Float[Array, "... D"]) -> Float[Array, "... E"]:
    """Apply a linear layer on the flattened ``[rows, D]`` view (XLA:CPU runs 2-D matmuls ~3x faster)."""
    y = layer(x.reshape(-1, x.shape[-1]))
    return y.reshape(*x.shape[:-1], y.shape[-1])


# ---------------------------------------------------------------- vision (SigLIP)
class SiglipAttention(nnx.Module):
    def __init__(self, cfg: VisionConfig, *, rngs: nnx.Rngs) -> None:
        d = cfg.width
        self.heads = cfg.heads
        self.q_proj = nnx.Linear(d, d, rngs=rngs)
        self.k_proj = nnx.Linear(d, d, rngs=rngs)
        self.v_proj = nnx.Linear(d, d, rngs=rngs)
        self.out_proj = nnx.Linear(d, d, rngs=rngs)

    def __call__(self, x: Float[Array, "B N D"]) -> Float[Array, "B N D"]:
        b, n, d = x.shape
        hd = d // self.heads
        q, k, v = (_dense(p, x).reshape(b, n, self.heads, hd) for p in (self.q_proj, self.k_proj, self.v_proj))
        att = jnp.einsum("bqhd,bkhd->bhqk", q, k).astype(jnp.float32) * hd**-0.5
        att = jax.nn.softmax(att, axis=-1).astype(v.dtype)
        return _dense(self.out_proj, jnp.einsum("bhqk,bkhd->bqhd", att, v).reshape(b, n, d))


class SiglipBlock(nnx.Module):
    def __init__(self, cfg: VisionConfig, *, rngs: nnx.Rngs) -> None:
        d = cfg.width
        self.layer_norm1 = nnx.LayerNorm(d, epsilon=cfg.layer_norm_eps, use_fast_variance=False, rngs=rngs)
        self.self_attn = SiglipAttention(cfg, rngs=rngs)
        self.layer_norm2 = nnx.LayerNorm(d, epsilon=cfg.layer_norm_eps, use_fast_variance=False, rngs=rngs)
        self.fc1 = nnx.Linear(d, cfg.mlp_dim, rngs=rngs)
        self.fc2 = nnx.Linear(cfg.mlp_dim, d, rngs=rngs)

    def __call__(self, x: Float[Array, "B N D"]) -> Float[Array, "B N D"]:
        x = x + self.self_attn(self.layer_norm1(x))
        return x + _dense(self.fc2, _gelu(_dense(self.fc1, self.layer_norm2(x))))


class ConvStem(nnx.Module):
    """Two 3x3 stride-2 convolutions (GELU) then a ``patch_size // 4`` patchifying conv: pixels
    ``[B, H, W, 3]`` -> ``[B, H/p, W/p, width]``, the same grid as a ``patch_size`` patch embedding."""

    def __init__(self, cfg: VisionConfig, *, rngs: nnx.Rngs) -> None:
        c, p = cfg.stem_width, cfg.patch_size
        if c <= 0 or p % 4:
            raise ValueError(f"conv stem needs stem_width > 0 and patch_size divisible by 4 (got {c}, {p})")
        self.conv1 = nnx.Conv(3, c, kernel_size=(3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
        self.conv2 = nnx.Conv(c, 2 * c, kernel_size=(3, 3), strides=(2, 2), padding="SAME", rngs=rngs)
        self.proj = nnx.Conv(2 * c, cfg.width, kernel_size=(p // 4, p // 4), strides=(p // 4, p // 4),
                             padding="VALID", rngs=rngs)

    @property
    def kernel(self) -> nnx.Param:
        return self.conv1.kernel

    def __call__(self, x: Float[Array, "B H W 3"]) -> Float[Array, "B h w D"]:
        return self.proj(_gelu(self.conv2(_gelu(self.conv1(x)))))


class VisionEncoder(nnx.Module):
    """SigLIP ViT without head: ``[B, H, W, 3]`` pixels in [-1, 1] -> ``[B, N, vision.width]``."""

    def __init__(self, cfg: VisionConfig, *, rngs: nnx.Rngs) -> None:
        p = cfg.patch_size
        if cfg.stem == "conv":
            self.patch_embedding = ConvStem(cfg, rngs=rngs)
        elif cfg.stem == "patch":
            self.patch_embedding = nnx.Conv(3, cfg.width, kernel_size=(p, p), strides=(p, p), padding="VALID",
                                            rngs=rngs)
        else:
            raise ValueError(f"unknown vision stem {cfg.stem!r} (patch | conv)")
        self.position_embedding = nnx.Param(
            jax.random.normal(rngs.params(), (cfg.num_patches, cfg.width)) / math.sqrt(cfg.width))
        self.layers = nnx.List([SiglipBlock(cfg, rngs=rngs) for _ in range(cfg.depth)])
        self.post_layernorm = nnx.LayerNorm(cfg.width, epsilon=cfg.layer_norm_eps, use_fast_variance=False,
                                            rngs=rngs)

    def __call__(self, pixels: Float[Array, "B H W 3"]) -> Float[Array, "B N D"]:
        x = self.patch_embedding(pixels.astype(self.patch_embedding.kernel.dtype))
        b, gh, gw, d = x.shape
        x = x.reshape(b, gh * gw, d) + self.position_embedding[...].astype(x.dtype)
        for layer in self.layers:
            x = layer(x)
        return self.post_layernorm(x)


# ---------------------------------------------------------------- decoder (Gemma)
class RMSNorm(nnx.Module):
    """Gemma's RMSNorm: the scale is stored as ``w`` and applied as ``(1 + w)``; computed in float32."""

    def __init__(self, dim: int, eps: float) -> None:
        self.eps = eps
        self.weight = nnx.Param(jnp.zeros((dim,), jnp.float32))

    def __call__(self, x: Float[Array, "... D"]) -> Float[Array, "... D"]:
        xf = x.astype(jnp.float32)
        xf = xf * jax.lax.rsqrt(jnp.mean(xf * xf, axis=-1, keepdims=True) + self.eps)
        return (xf * (1.0 + self.weight[...].astype(jnp.float32))).astype(x.dtype)


def rope(x: Float[Array, "B T H D"], positions: Float[Array, "B T"], theta: float) -> Float[Array, "B T H D"]:
    """Rotary embedding, rotate-half convention (as transformers' Gemma)."""
    hd = x.shape[-1]
    inv_freq = 1.0 / (theta ** (jnp.arange(0, hd, 2, dtype=jnp.float32) / hd))
    freqs = positions.astype(jnp.float32)[..., None] * inv_freq  # B T hd/2
    emb = jnp.concatenate([freqs, freqs], axis=-1)[:, :, None, :]
    cos, sin = jnp.cos(emb).astype(x.dtype), jnp.sin(emb).astype(x.dtype)
    x1, x2 = x[..., : hd // 2], x[..., hd // 2:]
    return x * cos + jnp.concatenate([-x2, x1], axis=-1) * sin


class GemmaAttention(nnx.Module):
    def __init__(self, cfg: TextConfig, *, rngs: nnx.Rngs) -> None:
        self.cfg = cfg
        d, hd = cfg.width, cfg.head_dim
        self.q_proj = nnx.Linear(d, cfg.heads * hd, use_bias=False, rngs=rngs)
        self.k_proj = nnx.Linear(d, cfg.kv_heads * hd, use_bias=False, rngs=rngs)
        self.v_proj = nnx.Linear(d, cfg.kv_heads * hd, use_bias=False, rngs=rngs)
        self.o_proj = nnx.Linear(cfg.heads * hd, d, use_bias=False, rngs=rngs)

    def __call__(self, x: Float[Array, "B T D"], positions: Float[Array, "B T"], mask: Bool[Array, "B T S"],
                 kv: tuple[Array, Array] | None = None, index: Int[Array, ""] | None = None,
                 ) -> tuple[Float[Array, "B T D"], tuple[Array, Array]]:
        """Attend; with ``kv`` (cache ``[B, S, K, hd]`` each), write this step's k/v at ``index``."""
        c = self.cfg
        b, t, _ = x.shape
        q = rope(_dense(self.q_proj, x).reshape(b, t, c.heads, c.head_dim), positions, c.rope_theta)
        k = rope(_dense(self.k_proj, x).reshape(b, t, c.kv_heads, c.head_dim), positions, c.rope_theta)
        v = _dense(self.v_proj, x).reshape(b, t, c.kv_heads, c.head_dim)
        if kv is not None:
            k = jax.lax.dynamic_update_slice(kv[0], k.astype(kv[0].dtype), (0, index, 0, 0))
            v = jax.lax.dynamic_update_slice(kv[1], v.astype(kv[1].dtype), (0, index, 0, 0))
        g, kh, hd = c.heads // c.kv_heads, c.kv_heads, c.head_dim
        s = k.shape[1]
        # Rows ordered (t, g) per kv head: [B, K, T*G, hd] x [B, K, S, hd] is one batched matmul per kv
        # head, and for K = 1 (Gemma/PaliGemma) every reshape/transpose here is free (a bitcast).
        qg = q.reshape(b, t, kh, g, hd).transpose(0, 2, 1, 3, 4).reshape(b, kh, t * g, hd)
        kk, vv = k.astype(q.dtype).transpose(0, 2, 1, 3), v.astype(q.dtype).transpose(0, 2, 1, 3)
        att = jnp.einsum("bkqd,bksd->bkqs", qg, kk).astype(jnp.float32) * hd**-0.5
        # additive mask (0 / -big) broadcast over the g query rows of each position: [B, 1, T, 1, S]
        bias = jnp.where(mask, 0.0, _NEG).astype(jnp.float32)[:, None, :, None, :]
        att = (att.reshape(b, kh, t, g, s) + bias).reshape(b, kh, t * g, s)
        att = jax.nn.softmax(att, axis=-1).astype(q.dtype)
        out = jnp.einsum("bkqs,bksd->bkqd", att, vv).reshape(b, kh, t, g, hd)
        out = out.transpose(0, 2, 1, 3, 4).reshape(b, t, c.heads * hd)
        return _dense(self.o_proj, out), (k, v)


class GemmaBlock(nnx.Module):
    def __init__(self, cfg: TextConfig, *, rngs: nnx.Rngs) -> None:
        self.input_layernorm = RMSNorm(cfg.width, cfg.rms_norm_eps)
        self.self_attn = GemmaAttention(cfg, rngs=rngs)
        self.post_attention_layernorm = RMSNorm(cfg.width, cfg.rms_norm_eps)
        self.gate_proj = nnx.Linear(cfg.width, cfg.mlp_dim, use_bias=False, rngs=rngs)
        self.up_proj = nnx.Linear(cfg.width, cfg.mlp_dim, use_bias=False, rngs=rngs)
        self.down_proj = nnx.Linear(cfg.mlp_dim, cfg.width, use_bias=False, rngs=rngs)

    def __call__(self, x, positions, mask, kv=None, index=None):
        h, kv = self.self_attn(self.input_layernorm(x), positions, mask, kv, index)
        x = x + h
        h = self.post_attention_layernorm(x)
        return x + _dense(self.down_proj, _gelu(_dense(self.gate_proj, h)) * _dense(self.up_proj, h)), kv


def prefix_lm_mask(valid: Bool[Array, "B L"], suffix: Bool[Array, "B L"]) -> Bool[Array, "B L L"]:
    """``mask[b, i, j]``: query ``i`` may see key ``j`` (valid, and causal or both in the prefix)."""
    n = valid.shape[1]
    causal = jnp.arange(n)[:, None] >= jnp.arange(n)[None, :]
    prefix = ~suffix
    both_prefix = prefix[:, :, None] & prefix[:, None, :]
    return valid[:, None, :] & (causal[None] | both_prefix)


class PaliGemma(nnx.Module):
    """PaliGemma: ``logits = model(pixels, tokens, valid, suffix)`` over the text positions."""

    def __init__(self, config: VLMConfig, *, rngs: nnx.Rngs) -> None:
        self.config = config
        t = config.text
        self.vision = VisionEncoder(config.vision, rngs=rngs)
        if config.vision.grid_feed and not config.vision.grid_head:
            raise ValueError("vision.grid_feed needs a grid head (vision.grid_head > 0)")
        feed = config.vision.grid_head if config.vision.grid_feed else 0
        self.projector = nnx.Linear(config.vision.width + feed, t.width, rngs=rngs)
        self.embedder = nnx.Embed(t.vocab_size, t.width, embedding_init=nnx.initializers.normal(0.02), rngs=rngs)
        self.layers = nnx.List([GemmaBlock(t, rngs=rngs) for _ in range(t.depth)])
        self.final_norm = RMSNorm(t.width, t.rms_norm_eps)
        if config.vision.grid_head:
            self.grid_head = nnx.Linear(config.vision.width, config.vision.grid_head, rngs=rngs)

    # -- pieces
    def embed_image(self, pixels: Float[Array, "B H W 3"]) -> Float[Array, "B N D"]:
        return _dense(self.projector, self.image_features(self.vision(pixels)))

    def image_features(self, vision: Float[Array, "B N E"]) -> Float[Array, "B N F"]:
        """What the projector reads: the vision tokens and, with ``vision.grid_feed``, the grid head's
        per-group probabilities (``stop_gradient``: the head is trained only by its own dense loss)."""
        if not self.config.vision.grid_feed:
            return vision
        b, n, d = vision.shape
        logits = jax.lax.stop_gradient(self.grid_head(vision.reshape(b * n, d)).astype(jnp.float32))
        probs, start = [], 0
        for size in groups(box_bins_of(self.config.vision.grid_head)):
            probs.append(jax.nn.softmax(logits[:, start:start + size], axis=-1))
            start += size
        return jnp.concatenate([vision, jnp.concatenate(probs, -1).reshape(b, n, -1).astype(vision.dtype)], -1)

    def embed_text(self, tokens: Int[Array, "B T"]) -> Float[Array, "B T D"]:
        table = self.embedder.embedding[...]
        return jnp.take(table, tokens, axis=0) * jnp.asarray(math.sqrt(self.config.text.width), table.dtype)

    def _sequence(self, pixels, tokens, valid, suffix, vision=None):
        img = _dense(self.projector, self.image_features(self.vision(pixels) if vision is None else vision))
        txt = self.embed_text(tokens)
        b, n = img.shape[:2]
        x = jnp.concatenate([img.astype(txt.dtype), txt], axis=1)
        full_valid = jnp.concatenate([jnp.ones((b, n), bool), valid.astype(bool)], axis=1)
        full_suffix = jnp.concatenate([jnp.zeros((b, n), bool), suffix.astype(bool)], axis=1)
        return x, full_valid, full_suffix

    def _logits(self, h: Float[Array, "B T D"]) -> Float[Array, "B T V"]:
        return _dense(self.embedder.attend, self.final_norm(h))

    # -- training / scoring
    def __call__(self, pixels: Float[Array, "B H W 3"], tokens: Int[Array, "B T"], valid: Bool[Array, "B T"],
                 suffix: Bool[Array, "B T"]) -> Float[Array, "B T V"]:
        """Logits for each text position (the next-token distribution after that token)."""
        return self.logits(self.hidden(pixels, tokens, valid, suffix))

    def hidden(self, pixels: Float[Array, "B H W 3"], tokens: Int[Array, "B T"], valid: Bool[Array, "B T"],
               suffix: Bool[Array, "B T"]) -> Float[Array, "B T D"]:
        """The decoder's last hidden states at the text positions (before the final norm)."""
        return self.hidden_and_vision(pixels, tokens, valid, suffix)[0]

    def hidden_and_vision(self, pixels: Float[Array, "B H W 3"], tokens: Int[Array, "B T"],
                          valid: Bool[Array, "B T"], suffix: Bool[Array, "B T"]
                          ) -> tuple[Float[Array, "B T D"], Float[Array, "B N E"]]:
        """:meth:`hidden` and the vision encoder's output tokens (for dense pretraining heads)."""
        vision = self.vision(pixels)
        x, full_valid, full_suffix = self._sequence(pixels, tokens, valid, suffix, vision)
        positions = jnp.cumsum(full_valid, axis=1).astype(jnp.float32)
        mask = prefix_lm_mask(full_valid, full_suffix)
        for layer in self.layers:
            x, _ = layer(x, positions, mask)
        return x[:, self.config.num_image_tokens:], vision

    def logits(self, h: Float[Array, "B T D"]) -> Float[Array, "B T V"]:
        """Next-token logits from :meth:`hidden` states (any subset of positions)."""
        return self._logits(h)

    # -- decoding with a KV cache
    def prefill(self, pixels: Float[Array, "B H W 3"], tokens: Int[Array, "B T"], valid: Bool[Array, "B T"],
                cache_size: int, cache_dtype=jnp.float32) -> tuple[Float[Array, "B V"], Cache]:
        """Run the prompt (image + text, all prefix) and return the last position's logits and a cache.

        The last text position must be valid (left-pad the text: pads between image and text).
        """
        x, full_valid, full_suffix = self._sequence(pixels, tokens, valid, jnp.zeros_like(valid))
        b, n, _ = x.shape
        t = self.config.text
        positions = jnp.cumsum(full_valid, axis=1).astype(jnp.float32)
        if cache_size < n:
            raise ValueError(f"cache_size {cache_size} is shorter than the prompt ({n} tokens)")
        mask = jnp.pad(prefix_lm_mask(full_valid, full_suffix), ((0, 0), (0, 0), (0, cache_size - n)))
        ks, vs = [], []
        for layer in self.layers:
            empty = jnp.zeros((b, cache_size, t.kv_heads, t.head_dim), cache_dtype)
            x, (k, v) = layer(x, positions, mask, (empty, empty), jnp.int32(0))
            ks.append(k)
            vs.append(v)
        cache = {
            "k": jnp.stack(ks), "v": jnp.stack(vs),
            "valid": jnp.zeros((b, cache_size), bool).at[:, :n].set(full_valid),
            "pos": positions[:, -1].astype(jnp.int32),
        }
        return self._logits(x[:, -1:])[:, 0], cache

    def decode_step(self, token: Int[Array, "B"], cache: Cache, index: Int[Array, ""]
                    ) -> tuple[Float[Array, "B V"], Cache]:
        """Feed one token per row at cache slot ``index``; returns its next-token logits."""
        b = token.shape[0]
        size = cache["valid"].shape[1]
        x = self.embed_text(token[:, None])
        pos = cache["pos"] + 1
        valid = cache["valid"].at[:, index].set(True)
        mask = (valid & (jnp.arange(size)[None, :] <= index))[:, None, :]
        ks, vs = [], []
        for i, layer in enumerate(self.layers):
            x, (k, v) = layer(x, pos[:, None].astype(jnp.float32), mask, (cache["k"][i], cache["v"][i]), index)
            ks.append(k)
            vs.append(v)
        new = {"k": jnp.stack(ks), "v": jnp.stack(vs), "valid": valid, "pos": pos}
        return self._logits(x)[:, 0], new


def build_model(config: VLMConfig, seed: int = 0) -> PaliGemma:
    """A randomly initialised model (deterministic in ``seed``)."""
    return PaliGemma(config, rngs=nnx.Rngs(seed))


def count_params(model: nnx.Module) -> int:
    return sum(x.size for x in jax.tree.leaves(nnx.state(model, nnx.Param)))
