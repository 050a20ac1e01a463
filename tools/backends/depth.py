"""Monocular depth (transformers): Depth Anything and DPT.

``depth(image)`` -> median relative depth of the image (larger is farther, unitless). Both model
families predict relative *inverse* depth (disparity); it is min-max normalised over the image to
``d`` in [0, 1] and converted to ``1 / max(d, 0.01)``, so the nearest pixel is 1.0 and the
farthest is 100. Option ``output: metric`` is for checkpoints that predict metric depth
(e.g. Depth Anything metric, ZoeDepth): the median prediction is returned as is.
"""

from __future__ import annotations

from typing import Any

from PIL import Image

from vpd.tools.backend import register_backend
from vpd.tools.backends._hf import ModelBackend, chunked


class _Depth(ModelBackend):
    provides = frozenset({"depth"})
    batchable = frozenset({"depth"})
    max_batch = 8
    needs = "transformers; a local depth-estimation checkpoint folder (model + image processor)"

    def _load(self) -> None:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        path = self.paths["model_path"]
        self.processor = AutoImageProcessor.from_pretrained(path)
        self.model = self.to_device(AutoModelForDepthEstimation.from_pretrained(path))
        self.metric = str(self.options.get("output", "relative")) == "metric"

    def depth(self, image: Image.Image) -> float:
        out = self.depth_batch([image], [{}])[0]
        if isinstance(out, Exception):
            raise out
        return out

    def depth_map(self, image: Image.Image):
        """The relative depth map (H, W) as a float32 numpy array at the image's resolution."""
        return self._maps([image])[0]

    def depth_batch(self, images: list[Image.Image], args: list[dict[str, Any]]) -> list[Any]:
        def run(imgs: list[Image.Image], _: list[dict[str, Any]]) -> list[float]:
            import numpy as np

            return [float(np.median(m)) for m in self._maps(imgs)]

        return chunked(run, images, args, self.max_batch)

    def _maps(self, images: list[Image.Image]):
        import torch

        # Images of different sizes may preprocess to different shapes: group equal shapes.
        pixel = [self.processor(images=im, return_tensors="pt")["pixel_values"][0] for im in images]
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, p in enumerate(pixel):
            groups.setdefault(tuple(p.shape), []).append(i)
        maps: list[Any] = [None] * len(images)
        for idx in groups.values():
            batch = torch.stack([pixel[i] for i in idx]).to(self.device, dtype=self.dtype)
            with torch.inference_mode():
                pred = self.model(pixel_values=batch).predicted_depth.float()
            for j, i in enumerate(idx):
                w, h = images[i].size
                m = torch.nn.functional.interpolate(pred[j][None, None], size=(h, w), mode="bicubic",
                                                    align_corners=False)[0, 0].cpu()
                maps[i] = self._to_depth(m).numpy()
        return maps

    def _to_depth(self, pred):
        if self.metric:
            return pred
        lo, hi = pred.min(), pred.max()
        d = (pred - lo) / (hi - lo) if float(hi - lo) > 1e-12 else pred * 0 + 1.0
        return 1.0 / d.clamp(min=0.01)


@register_backend("depth_anything")
class DepthAnythingBackend(_Depth):
    """Depth Anything (e.g. depth-anything/Depth-Anything-V2-Large-hf)."""

    weight_keys = {"model_path": "/models/Depth-Anything-V2-Large-hf"}


@register_backend("dpt")
class DptBackend(_Depth):
    """DPT / MiDaS 3 (e.g. Intel/dpt-large, ViperGPT's depth model)."""

    weight_keys = {"model_path": "/models/dpt-large"}
