"""Our own distilled student (the Flax PaliGemma-style VLM from ``vpd train``) as a tool.

``model_path``: a student checkpoint folder (``config.json``, ``tokenizer.json``, orbax ``state/``).
``vqa`` prompts with the training mixture's label prefix (``"{question}\\nAnswer with a single word
or phrase."``); with option ``mode: rationale`` it prompts for a rationale and returns the text after
the last "So the answer is" (the whole output if absent). ``caption`` prompts ``caption_prompt``
(default ``"Describe the image in one sentence."``). Greedy decoding, ``max_new_tokens`` (default
32; 128 in rationale mode). Batched decoding left-pads prompts, so batched answers equal
one-by-one answers. JAX picks its own device (GPU/TPU when jax sees one) and runs float32 (option
``dtype`` may only be ``auto``/``float32``).
"""

from __future__ import annotations

import re
from typing import Any

from PIL import Image

from vpd.tools.backend import register_backend
from vpd.tools.backends._hf import chunked
from vpd.tools.backends.blip import _Generative
from vpd.tools.errors import ToolError

_ANSWER_RE = re.compile(r"so the answer is\s*(.+?)\s*\.?\s*$", re.IGNORECASE | re.DOTALL)


def answer_from_rationale(text: str) -> str:
    """The answer after the last "So the answer is" (trailing period dropped); else the text."""
    idx = text.lower().rfind("so the answer is")
    if idx < 0:
        return text.strip()
    m = _ANSWER_RE.match(text[idx:])
    return m.group(1).strip() if m else text.strip()


@register_backend("vpd_vlm")
class VpdVlmBackend(_Generative):
    """The distilled student (vpd.distill.vlm_*)."""

    weight_keys = {"model_path": "runs/student"}
    memory_class = "gpu-small"
    max_batch = 16
    needs = "jax, flax, orbax; a student checkpoint folder from `vpd train`"
    settings = {**_Generative.settings, "max_new_tokens": None, "mode": "label",
                "caption_prompt": "Describe the image in one sentence."}
    key_settings = _Generative.key_settings | {"mode", "caption_prompt"}

    def __init__(self, **options: Any) -> None:
        if options.get("half") or str(options.get("dtype", "auto")) not in ("auto", "float32"):
            raise ToolError("vpd_vlm runs float32 under JAX: leave `dtype` unset (or float32)")
        options = {**{k: v for k, v in options.items() if k != "half"}, "dtype": "float32"}
        super().__init__(**options)

    def effective_setting(self, name: str) -> Any:
        if name == "max_new_tokens":
            return self.max_new_tokens  # unset: 128 in rationale mode, 32 for labels
        return super().effective_setting(name)

    def _load(self) -> None:
        from vpd.distill.vlm_checkpoint import load_student

        self.model, self.tokenizer, self.meta = load_student(self.paths["model_path"])
        self.image_size = int(self.model.config.vision.image_size)
        self.max_prefix = int(self.meta.get("max_prefix", 64))
        mode = self.setting("mode")
        if mode not in ("label", "rationale"):
            raise ToolError(f"vpd_vlm: option `mode` must be 'label' or 'rationale', got {mode!r}")
        self.rationale = mode == "rationale"
        self.max_new_tokens = int(self.setting("max_new_tokens") or (128 if self.rationale else 32))
        self.caption_prompt = self.setting("caption_prompt")

    def _decode(self, images: list[Image.Image], prefixes: list[str]) -> list[str]:
        import numpy as np

        from vpd.distill.vlm_decode import SamplingConfig, generate
        from vpd.distill.vlm_preprocess import encode_prompts, preprocess_image

        pixels = np.stack([preprocess_image(im, self.image_size) for im in images])
        tokens, valid = encode_prompts(self.tokenizer, prefixes, self.max_prefix)
        ids = generate(self.model, pixels, tokens, valid, SamplingConfig(max_new_tokens=self.max_new_tokens))
        return [self.tokenizer.decode(row).strip() for row in ids]

    def _vqa(self, images: list[Image.Image], questions: list[str]) -> list[str]:
        # the exact prompts the student was trained on (vpd.distill.mixture)
        from vpd.distill.mixture import label_prefix, rationale_prefix
        from vpd.types import Example

        examples = [Example(id=str(i), image="", question=q) for i, q in enumerate(questions)]
        if self.rationale:
            return [answer_from_rationale(t) for t in self._decode(images, [rationale_prefix(e) for e in examples])]
        return self._decode(images, [label_prefix(e) for e in examples])

    def _caption(self, images: list[Image.Image]) -> list[str]:
        return self._decode(images, [self.caption_prompt] * len(images))

    def vqa_batch(self, images: list[Image.Image], args: list[dict[str, Any]]) -> list[Any]:
        return chunked(lambda i, a: self._vqa(i, [str(x["question"]) for x in a]), images, args, self.max_batch)
