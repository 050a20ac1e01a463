"""PaliGemma visual question answering and captioning (transformers).

Prompts follow PaliGemma's task prefixes: ``vqa`` -> ``"answer {lang} {question}"``, ``caption``
-> ``"caption {lang}"`` (option ``lang``, default ``en``). Greedy decoding, ``max_new_tokens``
(default 20); prompts are padded on the left, so batched answers equal one-by-one answers.
"""

from __future__ import annotations

from PIL import Image

from vpd.tools.backend import register_backend
from vpd.tools.backends.blip import _Generative


@register_backend("paligemma")
class PaliGemmaBackend(_Generative):
    """PaliGemma (e.g. google/paligemma2-3b-mix-448)."""

    weight_keys = {"model_path": "/models/paligemma2-3b-mix-448"}
    memory_class = "gpu-large"
    needs = "transformers; a local PaliGemma checkpoint folder"
    settings = {**_Generative.settings, "lang": "en"}
    key_settings = _Generative.key_settings | {"lang"}

    def _load(self) -> None:
        from transformers import PaliGemmaForConditionalGeneration, PaliGemmaProcessor

        path = self.paths["model_path"]
        self.processor = PaliGemmaProcessor.from_pretrained(path)
        self.processor.tokenizer.padding_side = "left"
        self.model = self.load_pretrained(PaliGemmaForConditionalGeneration, path)
        self.lang = self.setting("lang")

    def _vqa(self, images: list[Image.Image], questions: list[str]) -> list[str]:
        texts = [f"<image>answer {self.lang} {' '.join(q.split())}" for q in questions]
        return self._generate(self.model, self.processor, images, texts, strip_prompt=True)

    def _caption(self, images: list[Image.Image]) -> list[str]:
        return self._generate(self.model, self.processor, images, [f"<image>caption {self.lang}"] * len(images),
                              strip_prompt=True)
