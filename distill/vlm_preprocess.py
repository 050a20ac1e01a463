"""PaliGemma preprocessing: images to ``[S, S, 3]`` float32 in [-1, 1], text to prefix/suffix tokens.

Images: any PIL mode is converted to RGB (transparent pixels composited onto white, as
transformers' ``convert_rgb``; 16-bit and float greyscale rescaled to 0-255), resized to the
preset's square size with bilinear filtering (aspect ratio not kept, as PaliGemma), then
``x / 127.5 - 1``. Layout is HWC (channels last).

Text (PaliGemma's layout; image tokens come first, inside the model)::

    prefix:  <bos> + tokens(prefix + "\\n")      full attention (with the image)
    suffix:  tokens(suffix) + <eos>             causal; the loss falls only here

:func:`encode_example` pads to static lengths (``valid``/``suffix`` masks) for training;
:func:`encode_prompts` left-pads prompts for batched decoding (the last position is always real).
Prompt texts come from :mod:`vpd.distill.mixture` (``label_prefix``, ``rationale_prefix``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np
from jaxtyping import Bool, Float, Int
from PIL import Image

from vpd.distill.vlm_tokenizer import VLMTokenizer
from vpd.images import load_image

def to_rgb(image: Image.Image) -> Image.Image:
    """RGB version of any PIL image (alpha composited on white; I/I;16/F greyscale rescaled)."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I", "I;16", "I;16B", "I;16L", "F"):
        arr = np.asarray(image, dtype=np.float64)
        lo, hi = float(arr.min()), float(arr.max())
        arr = (arr - lo) / (hi - lo) * 255.0 if hi > lo else np.zeros_like(arr)
        return Image.fromarray(arr.astype(np.uint8), "L").convert("RGB")
    if image.mode in ("RGBA", "LA", "PA", "P", "La", "RGBa"):
        rgba = image.convert("RGBA")
        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, rgba).convert("RGB")
    return image.convert("RGB")


def resize_uint8(image: Image.Image | str | Path, size: int) -> np.ndarray:
    """``[size, size, 3]`` uint8 after RGB conversion and bilinear resize (any input size, even 1x1)."""
    if not isinstance(image, Image.Image):
        image = load_image(image)
    if image.width < 1 or image.height < 1:
        raise ValueError(f"empty image of size {image.size}")
    return np.asarray(to_rgb(image).resize((size, size), Image.Resampling.BILINEAR), dtype=np.uint8)


def normalize(pixels_uint8: np.ndarray) -> Float[np.ndarray, "... S S 3"]:
    """uint8 0..255 -> float32 in [-1, 1]."""
    return pixels_uint8.astype(np.float32) / 127.5 - 1.0


def preprocess_image(image: Image.Image | str | Path, size: int) -> Float[np.ndarray, "S S 3"]:
    """PaliGemma pixels: RGB, bilinear resize to ``size`` x ``size``, values in [-1, 1]."""
    return normalize(resize_uint8(image, size))


@dataclass(frozen=True, kw_only=True)
class EncodedText:
    """One example's text, padded to ``max_prefix + max_suffix`` tokens (pads at the end)."""

    tokens: Int[np.ndarray, "T"]
    valid: Bool[np.ndarray, "T"]
    suffix: Bool[np.ndarray, "T"]
    truncated: bool


def prefix_ids(tok: VLMTokenizer, prefix: str) -> list[int]:
    return [tok.bos_id] + tok.encode(prefix + "\n")


def encode_example(tok: VLMTokenizer, prefix: str, suffix: str, max_prefix: int, max_suffix: int) -> EncodedText:
    """Tokens for training; too-long prefixes keep their end (the instruction), suffixes their start."""
    p = prefix_ids(tok, prefix)
    s = tok.encode(suffix) + [tok.eos_id]
    truncated = len(p) > max_prefix or len(s) > max_suffix
    if len(p) > max_prefix:
        p = [tok.bos_id] + p[len(p) - max_prefix + 1:]
    s = s[:max_suffix]
    t = max_prefix + max_suffix
    tokens = np.full(t, tok.pad_id, np.int32)
    tokens[: len(p)] = p
    tokens[len(p): len(p) + len(s)] = s
    valid = np.zeros(t, bool)
    valid[: len(p) + len(s)] = True
    suffix_mask = np.zeros(t, bool)
    suffix_mask[len(p): len(p) + len(s)] = True
    return EncodedText(tokens=tokens, valid=valid, suffix=suffix_mask, truncated=truncated)


def encode_prompts(tok: VLMTokenizer, prefixes: Sequence[str], max_prefix: int
                   ) -> tuple[Int[np.ndarray, "B P"], Bool[np.ndarray, "B P"]]:
    """Left-padded prompt tokens and their validity mask, for decoding."""
    tokens = np.full((len(prefixes), max_prefix), tok.pad_id, np.int32)
    valid = np.zeros((len(prefixes), max_prefix), bool)
    for i, text in enumerate(prefixes):
        ids = prefix_ids(tok, text)
        if len(ids) > max_prefix:
            ids = [tok.bos_id] + ids[len(ids) - max_prefix + 1:]
        tokens[i, max_prefix - len(ids):] = ids
        valid[i, max_prefix - len(ids):] = True
    return tokens, valid
