"""Import a Hugging Face ``PaliGemmaForConditionalGeneration`` checkpoint into our Flax model.

A folder holds ``config.json``, ``model.safetensors`` (or shards listed in
``model.safetensors.index.json``) and ``tokenizer.json``. Both key layouts are read: the saved
(legacy) one, ``vision_tower.vision_model.* / language_model.model.* / multi_modal_projector.*``,
and the in-memory one of transformers 5, ``model.vision_tower.* / model.language_model.*``.
PyTorch ``Linear`` weights ``[out, in]`` become Flax kernels ``[in, out]``; the patch conv
``[out, in, kh, kw]`` becomes ``[kh, kw, in, out]``. The SigLIP pooling head is unused (PaliGemma
reads all patch tokens) and skipped.

Errors are specific: :class:`CheckpointError` for missing files, unsupported architectures or
missing tensors; :class:`ShapeMismatchError` names the tensor and both shapes.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from vpd.distill.vlm_config import TextConfig, VisionConfig, VLMConfig
from vpd.distill.vlm_model import PaliGemma
from vpd.distill.vlm_tokenizer import VLMTokenizer, load_tokenizer


class CheckpointError(ValueError):
    """The folder is not a usable PaliGemma checkpoint; the message says what is missing."""


class ShapeMismatchError(CheckpointError):
    """A tensor's shape disagrees with the shape the config implies."""


_PREFIXES = (
    ("vision_tower.vision_model.", "vision."), ("model.vision_tower.vision_model.", "vision."),
    ("model.vision_tower.", "vision."), ("vision_tower.", "vision."),
    ("multi_modal_projector.linear.", "proj."), ("model.multi_modal_projector.linear.", "proj."),
    ("language_model.model.", "text."), ("model.language_model.", "text."),
    ("language_model.lm_head.", "lm_head."), ("lm_head.", "lm_head."),
)


def _canonical(key: str) -> str | None:
    for old, new in _PREFIXES:
        if key.startswith(old):
            return new + key[len(old):]
    return None


def config_from_hf(folder: str | Path) -> VLMConfig:
    """Our :class:`VLMConfig` from ``folder/config.json`` (defaults filled by transformers' config class)."""
    folder = Path(folder)
    path = folder / "config.json"
    if not path.is_file():
        raise CheckpointError(f"no config.json in {folder}; expected a Hugging Face PaliGemma checkpoint folder "
                              "(config.json, model.safetensors, tokenizer.json)")
    raw = json.loads(path.read_text())
    if raw.get("model_type") != "paligemma":
        raise CheckpointError(f"{path}: model_type {raw.get('model_type')!r} is not 'paligemma'")
    from transformers import PaliGemmaConfig  # local: only needed for import

    hf = PaliGemmaConfig.from_pretrained(str(folder), local_files_only=True)
    v, t = hf.vision_config, hf.text_config
    if t.model_type != "gemma":
        raise CheckpointError(f"{path}: text model {t.model_type!r} is not supported (only Gemma 1, i.e. PaliGemma 1)")
    if getattr(t, "attention_bias", False):
        raise CheckpointError(f"{path}: attention_bias=true is not supported")
    head_dim = getattr(t, "head_dim", None) or t.hidden_size // t.num_attention_heads
    rope = (getattr(t, "rope_parameters", None) or {}).get("rope_theta", getattr(t, "rope_theta", 10000.0))
    if v.image_size % v.patch_size:
        raise CheckpointError(f"{path}: image_size {v.image_size} is not a multiple of patch_size {v.patch_size}")
    return VLMConfig(
        preset=f"hf:{folder.name}",
        vision=VisionConfig(image_size=v.image_size, patch_size=v.patch_size, width=v.hidden_size,
                            depth=v.num_hidden_layers, heads=v.num_attention_heads, mlp_dim=v.intermediate_size,
                            layer_norm_eps=v.layer_norm_eps),
        text=TextConfig(vocab_size=t.vocab_size, width=t.hidden_size, depth=t.num_hidden_layers,
                        heads=t.num_attention_heads, kv_heads=t.num_key_value_heads, head_dim=head_dim,
                        mlp_dim=t.intermediate_size, rms_norm_eps=t.rms_norm_eps, rope_theta=float(rope)),
        image_token_id=int(hf.image_token_index),
        pad_id=int(t.pad_token_id if t.pad_token_id is not None else 0),
        eos_id=int(t.eos_token_id if isinstance(t.eos_token_id, int) else 1),
        bos_id=int(t.bos_token_id if t.bos_token_id is not None else 2),
    )


def read_safetensors(folder: str | Path) -> dict[str, np.ndarray]:
    """All tensors of the folder as float32 numpy arrays, keyed canonically (``vision.…``, ``text.…``)."""
    from safetensors import safe_open

    folder = Path(folder)
    index = folder / "model.safetensors.index.json"
    if index.is_file():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    elif (folder / "model.safetensors").is_file():
        files = ["model.safetensors"]
    else:
        raise CheckpointError(f"no model.safetensors (or model.safetensors.index.json) in {folder}")
    out: dict[str, np.ndarray] = {}
    for name in files:
        path = folder / name
        if not path.is_file():
            raise CheckpointError(f"weight shard {name} listed in the index is missing from {folder}")
        with safe_open(str(path), framework="flax") as fh:
            for key in fh.keys():
                canon = _canonical(key)
                if canon is not None and not canon.startswith("vision.head."):
                    out[canon] = np.asarray(jnp.asarray(fh.get_tensor(key), jnp.float32))
    return out


def _hf_name(path: tuple) -> tuple[str, str]:
    """(canonical HF key, transform) for one of our parameter paths."""
    p = [str(x) for x in path]
    s = ".".join(p)
    rules = [
        (r"vision\.patch_embedding\.kernel", "vision.embeddings.patch_embedding.weight", "conv"),
        (r"vision\.patch_embedding\.bias", "vision.embeddings.patch_embedding.bias", ""),
        (r"vision\.position_embedding", "vision.embeddings.position_embedding.weight", ""),
        (r"vision\.post_layernorm\.scale", "vision.post_layernorm.weight", ""),
        (r"vision\.post_layernorm\.bias", "vision.post_layernorm.bias", ""),
        (r"vision\.layers\.(\d+)\.(layer_norm\d)\.scale", r"vision.encoder.layers.\1.\2.weight", ""),
        (r"vision\.layers\.(\d+)\.(layer_norm\d)\.bias", r"vision.encoder.layers.\1.\2.bias", ""),
        (r"vision\.layers\.(\d+)\.self_attn\.(\w+)\.kernel", r"vision.encoder.layers.\1.self_attn.\2.weight", "T"),
        (r"vision\.layers\.(\d+)\.self_attn\.(\w+)\.bias", r"vision.encoder.layers.\1.self_attn.\2.bias", ""),
        (r"vision\.layers\.(\d+)\.(fc\d)\.kernel", r"vision.encoder.layers.\1.mlp.\2.weight", "T"),
        (r"vision\.layers\.(\d+)\.(fc\d)\.bias", r"vision.encoder.layers.\1.mlp.\2.bias", ""),
        (r"projector\.kernel", "proj.weight", "T"),
        (r"projector\.bias", "proj.bias", ""),
        (r"embedder\.embedding", "text.embed_tokens.weight", ""),
        (r"final_norm\.weight", "text.norm.weight", ""),
        (r"layers\.(\d+)\.self_attn\.(\w+)\.kernel", r"text.layers.\1.self_attn.\2.weight", "T"),
        (r"layers\.(\d+)\.(\w+_proj)\.kernel", r"text.layers.\1.mlp.\2.weight", "T"),
        (r"layers\.(\d+)\.(\w+_layernorm)\.weight", r"text.layers.\1.\2.weight", ""),
    ]
    for pattern, repl, how in rules:
        if re.fullmatch(pattern, s):
            return re.sub(pattern, repl, s), how
    raise CheckpointError(f"no Hugging Face name for parameter {s}")


def _convert(arr: np.ndarray, how: str) -> np.ndarray:
    if how == "T":
        return arr.T
    if how == "conv":
        return arr.transpose(2, 3, 1, 0)
    return arr


def _hf_shape(shape: tuple, how: str) -> tuple:
    if how == "T":
        return shape[::-1]
    if how == "conv":
        return (shape[3], shape[2], shape[0], shape[1])
    return shape


def load_hf_paligemma(folder: str | Path, dtype=jnp.float32) -> tuple[PaliGemma, VLMTokenizer]:
    """Build our model from a HF checkpoint folder and load its tokenizer; raises :class:`CheckpointError`."""
    folder = Path(folder)
    if not folder.is_dir():
        raise CheckpointError(f"checkpoint folder not found: {folder}")
    config = config_from_hf(folder)
    tokenizer = load_tokenizer(folder)
    tensors = read_safetensors(folder)
    abstract = nnx.eval_shape(lambda: PaliGemma(config, rngs=nnx.Rngs(0)))
    graphdef, state = nnx.split(abstract)
    pure = nnx.to_pure_dict(state)
    missing: list[str] = []
    used: set[str] = set()

    def fill(path, leaf):
        name, how = _hf_name(path)
        if name not in tensors:
            missing.append(name)
            return leaf
        used.add(name)
        arr = _convert(tensors[name], how)
        if tuple(arr.shape) != tuple(leaf.shape):
            raise ShapeMismatchError(
                f"{name}: checkpoint has shape {tuple(tensors[name].shape)} but config.json implies "
                f"{_hf_shape(tuple(leaf.shape), how)} (check the config's sizes against the weights)")
        return jnp.asarray(arr, dtype)

    filled = jax.tree_util.tree_map_with_path(lambda p, x: fill(tuple(k.key for k in p), x), pure)
    if missing:
        raise CheckpointError(f"{folder}: {len(missing)} tensors missing from the checkpoint, e.g. {missing[:5]}")
    if "lm_head.weight" in tensors and "text.embed_tokens.weight" in tensors:
        if not np.allclose(tensors["lm_head.weight"], tensors["text.embed_tokens.weight"]):
            raise CheckpointError(f"{folder}: lm_head is not tied to the embedding; untied heads are not supported")
    if tokenizer.vocab_size > config.text.vocab_size:
        raise CheckpointError(f"{folder}: tokenizer has {tokenizer.vocab_size} tokens but the model only "
                              f"{config.text.vocab_size}")
    nnx.replace_by_pure_dict(state, filled)
    return nnx.merge(graphdef, state), tokenizer


def to_hf_config(config: VLMConfig):
    """The transformers ``PaliGemmaConfig`` with the same sizes (for export, tests and benchmarks)."""
    from transformers import PaliGemmaConfig

    v, t = config.vision, config.text
    return PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", hidden_size=v.width, intermediate_size=v.mlp_dim,
                           num_hidden_layers=v.depth, num_attention_heads=v.heads, patch_size=v.patch_size,
                           image_size=v.image_size, layer_norm_eps=v.layer_norm_eps, vision_use_head=False),
        text_config=dict(model_type="gemma", hidden_size=t.width, intermediate_size=t.mlp_dim,
                         num_hidden_layers=t.depth, num_attention_heads=t.heads, num_key_value_heads=t.kv_heads,
                         head_dim=t.head_dim, vocab_size=t.vocab_size, rms_norm_eps=t.rms_norm_eps,
                         rope_parameters={"rope_type": "default", "rope_theta": t.rope_theta},
                         pad_token_id=config.pad_id, eos_token_id=config.eos_id, bos_token_id=config.bos_id),
        image_token_index=config.image_token_id, projection_dim=t.width, hidden_size=t.width,
        vocab_size=t.vocab_size,
    )
