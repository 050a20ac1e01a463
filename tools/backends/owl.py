"""OWLv2 / OWL-ViT open-vocabulary detection (transformers).

``detect(image, query)`` -> boxes whose score passes ``threshold`` (option, default 0.1), in
pixels of the image (x0, y0, x1, y1, origin top-left), label = the query, highest score first.
OWLv2 pads images to a square before resizing, so its normalised boxes are relative to the padded
square; they are scaled by the longer side and clipped to the image.
"""

from __future__ import annotations

from typing import Any, ClassVar

from PIL import Image

from vpd.tools.backend import register_backend
from vpd.tools.backends._hf import ModelBackend, chunked
from vpd.types import Box


class _Owl(ModelBackend):
    provides = frozenset({"detect"})
    batchable = frozenset({"detect"})
    max_batch = 8
    memory_class = "gpu-small"
    pads_to_square: ClassVar[bool] = True
    needs = "transformers; a local OWL checkpoint folder (model + processor)"
    settings = {**ModelBackend.settings, "threshold": 0.1, "nms_iou": 0.5}
    key_settings = ModelBackend.key_settings | {"threshold", "nms_iou"}

    def _load(self) -> None:
        from transformers import AutoModelForZeroShotObjectDetection, AutoProcessor

        path = self.paths["model_path"]
        self.processor = AutoProcessor.from_pretrained(path)
        self.model = self.load_pretrained(AutoModelForZeroShotObjectDetection, path)
        self.threshold = self.setting("threshold")
        self.nms_iou = self.setting("nms_iou")

    def detect(self, image: Image.Image, query: str) -> list[Box]:
        return self.detect_batch([image], [{"query": query}])[0]

    def detect_batch(self, images: list[Image.Image], args: list[dict[str, Any]]) -> list[Any]:
        return chunked(self._detect_chunk, images, args, self.max_batch)

    def _detect_chunk(self, images: list[Image.Image], args: list[dict[str, Any]]) -> list[list[Box]]:
        import torch
        from torchvision.ops import nms

        queries = [[str(a["query"]).strip() or "object"] for a in args]
        inputs = self.processor(text=queries, images=images, return_tensors="pt")
        with torch.inference_mode():
            out = self.model(**self.inputs_to_device(inputs))
        logits = out.logits.float()  # (B, patches, queries)
        scores = torch.sigmoid(logits.max(-1).values)  # one query per image
        results: list[list[Box]] = []
        for i, img in enumerate(images):
            w, h = img.size
            sx, sy = (max(w, h), max(w, h)) if self.pads_to_square else (w, h)
            cx, cy, bw, bh = out.pred_boxes[i].float().unbind(-1)
            xyxy = torch.stack([(cx - bw / 2) * sx, (cy - bh / 2) * sy, (cx + bw / 2) * sx, (cy + bh / 2) * sy], -1)
            xyxy[:, 0::2] = xyxy[:, 0::2].clamp(0, w)
            xyxy[:, 1::2] = xyxy[:, 1::2].clamp(0, h)
            keep = scores[i] >= self.threshold
            boxes, sc = xyxy[keep].cpu(), scores[i][keep].cpu()
            if len(sc) and self.nms_iou < 1.0:
                idx = nms(boxes, sc, self.nms_iou)
                boxes, sc = boxes[idx], sc[idx]
            order = torch.argsort(sc, descending=True)
            results.append([Box(x0=float(b[0]), y0=float(b[1]), x1=float(b[2]), y1=float(b[3]),
                                score=float(s), label=queries[i][0]) for b, s in zip(boxes[order], sc[order])])
        return results


@register_backend("owlv2")
class OwlV2Backend(_Owl):
    """OWLv2 (google/owlv2-base-patch16-ensemble)."""

    weight_keys = {"model_path": "/models/owlv2-base-patch16-ensemble"}


@register_backend("owlvit")
class OwlViTBackend(_Owl):
    """OWL-ViT v1 (google/owlvit-base-patch32): images are resized (not padded) to a square."""

    weight_keys = {"model_path": "/models/owlvit-base-patch32"}
    pads_to_square = False
