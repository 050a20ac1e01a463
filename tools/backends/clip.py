"""CLIP / SigLIP image-text matching (transformers): ``verify_property`` and ``best_text_match``.

``best_text_match(image, options)`` -> the option whose prompt (option ``prompt``, default
``"a photo of {}"``) has the highest image-text logit.

``verify_property(image, name, prop)`` follows ViperGPT's binary competition: the positive text
``"{prop} {name}"`` competes one-on-one (softmax of the two logits) with each negative
``"{neg} {name}"`` for ``neg`` in option ``negative_properties`` (default: common colours,
materials and states, minus ``prop``); the mean win probability must exceed option
``threshold`` (default 0.6, ViperGPT's ``thresh_clip``).
"""

from __future__ import annotations

from typing import Any, ClassVar

from PIL import Image

from vpd.tools.backend import register_backend
from vpd.tools.backends._hf import ModelBackend, chunked

DEFAULT_NEGATIVES = ("red", "green", "blue", "yellow", "white", "black", "brown", "orange", "purple", "pink",
                     "gray", "wooden", "metal", "plastic", "glass", "large", "small", "open", "closed",
                     "empty", "full", "old", "new", "wet", "dry")


class _ImageText(ModelBackend):
    provides = frozenset({"verify_property", "best_text_match"})
    batchable = frozenset({"verify_property", "best_text_match"})
    max_batch = 16
    needs = "transformers; a local CLIP/SigLIP checkpoint folder (model + processor)"
    pad_to_max_length: ClassVar[bool] = False
    settings = {**ModelBackend.settings, "prompt": "a photo of {}", "threshold": 0.6,
                "negative_properties": DEFAULT_NEGATIVES}
    key_settings = ModelBackend.key_settings | {"prompt", "threshold", "negative_properties"}

    def _load(self) -> None:
        from transformers import AutoModel, AutoProcessor

        path = self.paths["model_path"]
        self.processor = AutoProcessor.from_pretrained(path)
        self.model = self.load_pretrained(AutoModel, path)
        self.prompt = self.setting("prompt")
        self.threshold = self.setting("threshold")
        self.negatives = tuple(self.setting("negative_properties"))
        self.text_len = int(self.model.config.text_config.max_position_embeddings)

    # -- core: logits of each image against its own list of texts ---------------------------
    def _logits(self, images: list[Image.Image], texts: list[list[str]]) -> list[list[float]]:
        import torch

        flat = [t for ts in texts for t in ts]
        kw: dict[str, Any] = ({"padding": "max_length", "max_length": self.text_len, "truncation": True}
                              if self.pad_to_max_length else {"padding": True, "truncation": True,
                                                              "max_length": self.text_len})
        inputs = self.processor(text=flat, images=images, return_tensors="pt", **kw)
        with torch.inference_mode():
            out = self.model(**self.inputs_to_device(inputs))
        logits = out.logits_per_image.float().cpu()  # (B, sum T)
        rows, start = [], 0
        for i, ts in enumerate(texts):
            rows.append(logits[i, start:start + len(ts)].tolist())
            start += len(ts)
        return rows

    def best_text_match(self, image: Image.Image, options: list[str]) -> str:
        return self._unwrap(self.best_text_match_batch([image], [{"options": options}])[0])

    def best_text_match_batch(self, images: list[Image.Image], args: list[dict[str, Any]]) -> list[Any]:
        def run(imgs: list[Image.Image], ars: list[dict[str, Any]]) -> list[str]:
            opts = [[str(o) for o in a["options"]] for a in ars]
            if any(not o for o in opts):
                raise ValueError("best_text_match needs at least one option")
            rows = self._logits(imgs, [[self.prompt.format(o) for o in os_] for os_ in opts])
            return [os_[max(range(len(r)), key=r.__getitem__)] for os_, r in zip(opts, rows)]

        return chunked(run, images, args, self.max_batch)

    def verify_property_score(self, image: Image.Image, name: str, prop: str) -> float:
        """Mean one-on-one win probability of ``"{prop} {name}"`` against the negatives (0..1)."""
        return self._scores([image], [{"name": name, "prop": prop}])[0]

    def _scores(self, images: list[Image.Image], args: list[dict[str, Any]]) -> list[float]:
        import math

        texts = []
        for a in args:
            name, prop = str(a["name"]).strip(), str(a["prop"]).strip()
            negs = [n for n in self.negatives if n.lower() != prop.lower()] or ["a"]
            texts.append([self.prompt.format(f"{prop} {name}")] + [self.prompt.format(f"{n} {name}") for n in negs])
        out = []
        for row in self._logits(images, texts):
            pos, negs = row[0], row[1:]
            out.append(sum(1.0 / (1.0 + math.exp(n - pos)) for n in negs) / len(negs))
        return out

    def verify_property(self, image: Image.Image, name: str, prop: str) -> bool:
        return self._unwrap(self.verify_property_batch([image], [{"name": name, "prop": prop}])[0])

    def verify_property_batch(self, images: list[Image.Image], args: list[dict[str, Any]]) -> list[Any]:
        def run(imgs: list[Image.Image], ars: list[dict[str, Any]]) -> list[bool]:
            return [s > self.threshold for s in self._scores(imgs, ars)]

        return chunked(run, images, args, self.max_batch)

    @staticmethod
    def _unwrap(value: Any) -> Any:
        if isinstance(value, Exception):
            raise value
        return value


@register_backend("clip")
class ClipBackend(_ImageText):
    """OpenAI CLIP (e.g. openai/clip-vit-large-patch14)."""

    weight_keys = {"model_path": "/models/clip-vit-large-patch14"}


@register_backend("siglip")
class SiglipBackend(_ImageText):
    """SigLIP (e.g. google/siglip-so400m-patch14-384); texts are padded to the model's max length."""

    weight_keys = {"model_path": "/models/siglip-so400m-patch14-384"}
    pad_to_max_length = True
