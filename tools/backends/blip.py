"""BLIP and BLIP-2 visual question answering and captioning (transformers).

* ``blip``: ``model_path`` is a BLIP VQA checkpoint (Salesforce/blip-vqa-capfilt-large) used for
  ``vqa``; ``caption_model_path`` a BLIP captioning checkpoint (Salesforce/blip-image-captioning-large)
  loaded on the first ``caption`` call.
* ``blip2``: one checkpoint (Salesforce/blip2-flan-t5-xxl or -opt-*) for both; ``vqa`` prompts
  ``"Question: {question} Answer:"`` (option ``vqa_prompt``), ``caption`` uses option
  ``caption_prompt`` (default ``""``: unconditional).

Decoding is greedy with ``max_new_tokens`` (option, default 20); answers are stripped strings.
Batches pad text on the left for decoder-only language models, so a batched answer equals the
one-by-one answer.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from typing import Any

from PIL import Image

from vpd.tools.backend import register_backend
from vpd.tools.backends._hf import ModelBackend, chunked


class _Generative(ModelBackend, ABC):
    provides = frozenset({"vqa", "caption"})
    batchable = frozenset({"vqa", "caption"})
    max_batch = 8
    settings = {**ModelBackend.settings, "max_new_tokens": 20}
    key_settings = ModelBackend.key_settings | {"max_new_tokens"}

    def vqa(self, image: Image.Image, question: str) -> str:
        return _unwrap(self.vqa_batch([image], [{"question": question}])[0])

    def caption(self, image: Image.Image) -> str:
        return _unwrap(self.caption_batch([image], [{}])[0])

    def vqa_batch(self, images: list[Image.Image], args: list[dict[str, Any]]) -> list[Any]:
        return chunked(lambda i, a: self._vqa(i, [str(x["question"]) for x in a]), images, args, self.max_batch)

    def caption_batch(self, images: list[Image.Image], args: list[dict[str, Any]]) -> list[Any]:
        return chunked(lambda i, a: self._caption(i), images, args, self.max_batch)

    @abstractmethod
    def _vqa(self, images: list[Image.Image], questions: list[str]) -> list[str]:
        """Short answers, one per (image, question)."""

    @abstractmethod
    def _caption(self, images: list[Image.Image]) -> list[str]:
        """One caption per image."""

    def _generate(self, model, processor, images, texts, *, strip_prompt: bool) -> list[str]:
        import torch

        kw: dict[str, Any] = {"images": images, "return_tensors": "pt"}
        if texts is not None:
            kw.update(text=texts, padding=True)
        inputs = self.inputs_to_device(processor(**kw))
        with torch.inference_mode():
            ids = model.generate(**inputs, max_new_tokens=self.setting("max_new_tokens"),
                                 do_sample=False, num_beams=1)
        if strip_prompt and "input_ids" in inputs and ids.shape[1] > inputs["input_ids"].shape[1]:
            ids = ids[:, inputs["input_ids"].shape[1]:]
        elif strip_prompt and "input_ids" in inputs and ids.shape[1] == inputs["input_ids"].shape[1]:
            ids = ids[:, :0]
        return [t.strip() for t in processor.batch_decode(ids, skip_special_tokens=True)]


def _unwrap(value: Any) -> Any:
    if isinstance(value, Exception):
        raise value
    return value


@register_backend("blip")
class BlipBackend(_Generative):
    """BLIP: a VQA model for ``vqa`` and a captioning model for ``caption``."""

    weight_keys = {"model_path": "/models/blip-vqa-capfilt-large",
                   "caption_model_path": "/models/blip-image-captioning-large"}
    lazy_keys = frozenset({"caption_model_path"})
    needs = "transformers; local BLIP VQA (+ captioning) checkpoint folders"

    def _load(self) -> None:
        from transformers import BlipForQuestionAnswering, BlipProcessor

        path = self.paths["model_path"]
        self.processor = BlipProcessor.from_pretrained(path)
        self.model = self.load_pretrained(BlipForQuestionAnswering, path)
        self.caption_model = None
        self.caption_processor = None

    def _vqa(self, images: list[Image.Image], questions: list[str]) -> list[str]:
        # transformers' BLIP VQA decoder attends to every question position (its generate() uses an
        # all-ones question mask), so padding would change answers: batch equal-length questions only.
        lengths = [len(self.processor.tokenizer(q)["input_ids"]) for q in questions]
        out: list[str] = [""] * len(questions)
        for n in sorted(set(lengths)):
            idx = [i for i, k in enumerate(lengths) if k == n]
            answers = self._generate(self.model, self.processor, [images[i] for i in idx],
                                     [questions[i] for i in idx], strip_prompt=False)
            for i, a in zip(idx, answers):
                out[i] = a
        return out

    def _caption(self, images: list[Image.Image]) -> list[str]:
        if self.caption_model is None:
            from transformers import BlipForConditionalGeneration, BlipProcessor

            path = self.path("caption_model_path")
            self._hash = None  # the weight hash now covers the captioning model too
            self.caption_processor = BlipProcessor.from_pretrained(path)
            self.caption_model = self.load_pretrained(BlipForConditionalGeneration, path)
        return self._generate(self.caption_model, self.caption_processor, images, None, strip_prompt=False)

    @classmethod
    def weights_status(cls, options: dict[str, Any] | None = None) -> str:
        return super().weights_status(options)


@register_backend("blip2")
class Blip2Backend(_Generative):
    """BLIP-2 (ViperGPT's VQA model): one checkpoint answers and captions."""

    weight_keys = {"model_path": "/models/blip2-flan-t5-xxl"}
    memory_class = "gpu-large"
    settings = {**_Generative.settings, "vqa_prompt": "Question: {question} Answer:", "caption_prompt": ""}
    key_settings = _Generative.key_settings | {"vqa_prompt", "caption_prompt"}
    needs = "transformers; a local BLIP-2 checkpoint folder"

    def _load(self) -> None:
        from transformers import Blip2ForConditionalGeneration, Blip2Processor

        path = self.paths["model_path"]
        self.processor = Blip2Processor.from_pretrained(path)
        self.processor.tokenizer.padding_side = "left"
        self.model = self.load_pretrained(Blip2ForConditionalGeneration, path)
        self.decoder_only = not self.model.config.use_decoder_only_language_model is False
        self.vqa_prompt = self.setting("vqa_prompt")
        self.caption_prompt = self.setting("caption_prompt")

    def _vqa(self, images: list[Image.Image], questions: list[str]) -> list[str]:
        texts = [self.vqa_prompt.format(question=q) for q in questions]
        return self._generate(self.model, self.processor, images, texts, strip_prompt=self.decoder_only)

    def _caption(self, images: list[Image.Image]) -> list[str]:
        texts = [self.caption_prompt] * len(images)
        return self._generate(self.model, self.processor, images, texts, strip_prompt=self.decoder_only)
