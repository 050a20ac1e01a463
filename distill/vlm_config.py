"""Configuration of the student VLM (PaliGemma architecture): frozen dataclasses and presets.

A :class:`VLMConfig` holds the SigLIP-style vision encoder (:class:`VisionConfig`), the Gemma
decoder (:class:`TextConfig`) and the special token ids. Presets are registered by name in
:data:`PRESETS`: ``tiny`` (a few million parameters, trains on a laptop CPU), ``student-s`` /
``student-sd`` / ``student-sg`` (the 2-core CPU students of the pretraining experiments), ``student-m``
(one GPU: the device ablation), ``test`` (unit tests) and
``paligemma-3b-pt-224`` (the sizes of Google's released checkpoint). Image sizes are pixels;
``num_image_tokens = (image_size // patch_size) ** 2``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Callable

from vpd.registry import Registry


@dataclass(frozen=True, kw_only=True)
class VisionConfig:
    """SigLIP ViT: square ``image_size`` px images cut into ``patch_size`` px patches."""

    image_size: int
    patch_size: int
    width: int
    depth: int
    heads: int
    mlp_dim: int
    layer_norm_eps: float = 1e-6
    #: ``patch`` (SigLIP: one ``patch_size`` conv) or ``conv`` (two 3x3 stride-2 convs of ``stem_width``
    #: and ``2 * stem_width`` channels, then a ``patch_size // 4`` conv: same token grid, more seeing per FLOP).
    stem: str = "patch"
    stem_width: int = 0
    #: > 0: a linear head of this many logits on each image token, for the dense pretraining targets of
    #: :mod:`vpd.distill.grid_targets` (unused after pretraining; not part of PaliGemma).
    grid_head: int = 0
    #: with a grid head: append its per-group probabilities (colour, shape, size [, box bins]; gradients
    #: stopped) to every image token before the projector, so the decoder reads the head's dense
    #: predictions beside the features (a "readout" student; not part of PaliGemma).
    grid_feed: bool = False

    @property
    def num_patches(self) -> int:
        return (self.image_size // self.patch_size) ** 2


@dataclass(frozen=True, kw_only=True)
class TextConfig:
    """Gemma decoder: multi-query/grouped attention (``kv_heads`` <= ``heads``), GeGLU MLP, RoPE."""

    vocab_size: int
    width: int
    depth: int
    heads: int
    kv_heads: int
    head_dim: int
    mlp_dim: int
    rms_norm_eps: float = 1e-6
    rope_theta: float = 10000.0


@dataclass(frozen=True, kw_only=True)
class VLMConfig:
    """The whole model. Token ids follow PaliGemma: pad 0, eos 1, bos 2."""

    vision: VisionConfig
    text: TextConfig
    image_token_id: int
    pad_id: int = 0
    eos_id: int = 1
    bos_id: int = 2
    preset: str = "custom"

    @property
    def num_image_tokens(self) -> int:
        return self.vision.num_patches

    def replace(self, **changes: Any) -> "VLMConfig":
        """A copy with top-level fields changed; ``vision=``/``text=`` may be dicts of changes."""
        for key in ("vision", "text"):
            if isinstance(changes.get(key), dict):
                changes[key] = dataclasses.replace(getattr(self, key), **changes[key])
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "VLMConfig":
        data = dict(data)
        return cls(vision=VisionConfig(**data.pop("vision")), text=TextConfig(**data.pop("text")), **data)


PRESETS: Registry[Callable[[], VLMConfig]] = Registry("model preset")


@PRESETS.register("tiny")
def tiny() -> VLMConfig:
    """~2M parameters: 64x64 images, patch 8 (64 image tokens), 4+4 layers of width 128."""
    return VLMConfig(
        preset="tiny",
        vision=VisionConfig(image_size=64, patch_size=8, width=128, depth=4, heads=4, mlp_dim=512),
        text=TextConfig(vocab_size=1024, width=128, depth=4, heads=4, kv_heads=1, head_dim=32, mlp_dim=512),
        image_token_id=4,
    )


@PRESETS.register("student-s")
def student_s() -> VLMConfig:
    """~1.2M parameters sized for a 2-core CPU: 128x128 images, convolutional stem to an 8x8 grid
    (64 image tokens of 16x16 px), 2 vision + 3 decoder layers of width 128."""
    return VLMConfig(
        preset="student-s",
        vision=VisionConfig(image_size=128, patch_size=16, width=128, depth=2, heads=4, mlp_dim=384,
                            stem="conv", stem_width=24, grid_head=16),
        text=TextConfig(vocab_size=1024, width=128, depth=3, heads=4, kv_heads=1, head_dim=32, mlp_dim=384),
        image_token_id=4,
    )


@PRESETS.register("student-sd")
def student_sd() -> VLMConfig:
    """``student-s`` with a decoder that reads more of the image (the readout experiment of the README):
    4 decoder layers instead of 3 and full multi-head attention (4 key/value heads, not 1), ~1.4M parameters."""
    return student_s().replace(preset="student-sd", text={"depth": 4, "kv_heads": 4})


@PRESETS.register("student-sg")
def student_sg() -> VLMConfig:
    """``student-s`` whose projector also reads the grid head's per-cell colour/shape/size probabilities
    (``vision.grid_feed``): the decoder gets the dense head's predictions beside the features."""
    return student_s().replace(preset="student-sg", vision={"grid_feed": True})


@PRESETS.register("student-m")
def student_m() -> VLMConfig:
    """~9M parameters for one GPU (the device ablation, :mod:`vpd.benchmarks.device_ablation`): 192x192
    images, convolutional stem to a 12x12 grid (144 image tokens of 16x16 px, so objects cover more
    pixels than at 128), 6 vision + 4 decoder layers of width 256."""
    return student_s().replace(preset="student-m",
                               vision={"image_size": 192, "width": 256, "depth": 6, "heads": 8, "mlp_dim": 1024,
                                       "stem_width": 32},
                               text={"width": 256, "depth": 4, "heads": 8, "kv_heads": 2, "mlp_dim": 1024})


@PRESETS.register("test")
def test() -> VLMConfig:
    """Minimal sizes for unit tests (compiles in about a second): 32x32 images, patch 8."""
    return VLMConfig(
        preset="test",
        vision=VisionConfig(image_size=32, patch_size=8, width=32, depth=1, heads=2, mlp_dim=64),
        text=TextConfig(vocab_size=320, width=32, depth=2, heads=2, kv_heads=1, head_dim=16, mlp_dim=64),
        image_token_id=4,
    )


@PRESETS.register("paligemma-3b-pt-224")
def paligemma_3b_pt_224() -> VLMConfig:
    """Google's PaliGemma 3B (224 px, SigLIP So400m/14 + Gemma 2B)."""
    return VLMConfig(
        preset="paligemma-3b-pt-224",
        vision=VisionConfig(image_size=224, patch_size=14, width=1152, depth=27, heads=16, mlp_dim=4304),
        text=TextConfig(vocab_size=257216, width=2048, depth=18, heads=8, kv_heads=1, head_dim=256,
                        mlp_dim=16384),
        image_token_id=257152,
    )


def preset(name: str) -> VLMConfig:
    """The config of a registered preset (unknown names fail with "did you mean")."""
    return PRESETS.get(name)()
