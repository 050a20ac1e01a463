"""PaliGemma preprocessing: images to ``[S, S, 3]`` float32 in [-1, 1], text to prefix/suffix tokens.

Images: any PIL mode is converted to RGB (transparent pixels composited onto white, as
transformers' ``convert_rgb``; 16-bit and float greyscale rescaled to 0-255), resized to the
preset's square size with bilinear filtering (aspect ratio not kept, as PaliGemma), then
``x / 127.5 - 1``. Layout is HWC (channels last).

Text (PaliGemma's layout; image tokens come first, inside the model)::

    prefix:  <bos> + tokens(prefix + "\\n")      full attention (with the image)
    suffix:  tokens(suffix) + <eos>             causal; the loss falls only here

:func:`encode_example` pads to static lengths (``valid``/``suffix`` masks) for training; a target
longer than ``max_suffix`` is shortened by :func:`vpd.distill.target_shorten.shorten_target` (box
lists, then middle sentences, then a middle cut; never the closing answer sentence) and always ends
with ``<eos>``;
:func:`encode_prompts` left-pads prompts for batched decoding (the last position is always real).
Prompt texts come from :mod:`vpd.distill.mixture` (``label_prefix``, ``rationale_prefix``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
from jaxtyping import Bool, Float, Int
from PIL import Image

from vpd.distill.target_shorten import Shortening, ShorteningCounts, shorten_target
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
    """One example's text, padded to ``max_prefix + max_suffix`` tokens (pads at the end).

    ``truncated``: the prompt's start was cut (``prefix_cut``) or the target was shortened
    (``shortening`` says how; ``shortening.text`` is the target actually encoded).
    """

    tokens: Int[np.ndarray, "T"]
    valid: Bool[np.ndarray, "T"]
    suffix: Bool[np.ndarray, "T"]
    truncated: bool
    prefix_cut: bool = False
    shortening: Shortening | None = None


def prefix_ids(tok: VLMTokenizer, prefix: str) -> list[int]:
    return [tok.bos_id] + tok.encode(prefix + "\n")


def suffix_ids(tok: VLMTokenizer, suffix: str, max_suffix: int) -> tuple[list[int], Shortening]:
    """Target tokens + ``<eos>``, at most ``max_suffix`` of them; the answer sentence is never cut
    unless it alone is longer than the budget (then its start is kept and ``answer_cut`` is set)."""
    if max_suffix < 1:
        raise ValueError(f"max_suffix must be >= 1 (room for <eos>), got {max_suffix}")
    ids = tok.encode(suffix)
    short = Shortening(text=suffix)
    if len(ids) + 1 > max_suffix:
        short = shorten_target(suffix, lambda t: len(tok.encode(t)) + 1 <= max_suffix)
        ids = tok.encode(short.text)
        if len(ids) + 1 > max_suffix:  # only when the answer alone does not fit (short.answer_cut)
            ids = ids[: max_suffix - 1]
    return ids + [tok.eos_id], short


def encode_example(tok: VLMTokenizer, prefix: str, suffix: str, max_prefix: int, max_suffix: int) -> EncodedText:
    """Tokens for training: a too-long prefix keeps its end (the instruction); a too-long target is
    shortened without cutting its answer (see :func:`suffix_ids`) and always ends with ``<eos>``."""
    p = prefix_ids(tok, prefix)
    s, short = suffix_ids(tok, suffix, max_suffix)
    prefix_cut = len(p) > max_prefix
    if prefix_cut:
        p = [tok.bos_id] + p[len(p) - max_prefix + 1:]
    t = max_prefix + max_suffix
    tokens = np.full(t, tok.pad_id, np.int32)
    tokens[: len(p)] = p
    tokens[len(p): len(p) + len(s)] = s
    valid = np.zeros(t, bool)
    valid[: len(p) + len(s)] = True
    suffix_mask = np.zeros(t, bool)
    suffix_mask[len(p): len(p) + len(s)] = True
    return EncodedText(tokens=tokens, valid=valid, suffix=suffix_mask, truncated=prefix_cut or short.shortened,
                       prefix_cut=prefix_cut, shortening=short)


def shortening_counts(encoded: Iterable[EncodedText]) -> ShorteningCounts:
    """How many targets were shortened and how, for a report (``.line()``): 0 answers cut is the goal."""
    encoded = list(encoded)
    return ShorteningCounts.of((e.shortening or Shortening(text="") for e in encoded),
                               prefixes_cut=sum(e.prefix_cut for e in encoded))


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
