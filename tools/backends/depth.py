"""Monocular depth (transformers): Depth Anything and DPT.

``depth(image, box=None)`` -> median relative depth inside ``box`` (pixels of ``image``, x0,y0,x1,y1;
the whole image if None; larger is farther, unitless). The host passes the *full* image and the
patch as ``box`` (as ViperGPT does), so depths of different patches of one image are comparable;
the depth map of an image is computed once and kept in a small LRU keyed by the pixels' hash. Both model
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
from vpd.tools.errors import ToolError


class _Depth(ModelBackend):
    provides = frozenset({"depth"})
    batchable = frozenset({"depth"})
    max_batch = 8
    needs = "transformers; a local depth-estimation checkpoint folder (model + image processor)"
    settings = {**ModelBackend.settings, "output": "relative"}
    key_settings = ModelBackend.key_settings | {"output"}

    def _load(self) -> None:
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        path = self.paths["model_path"]
        self.processor = AutoImageProcessor.from_pretrained(path)
        self.model = self.load_pretrained(AutoModelForDepthEstimation, path)
        output = self.setting("output")
        if output not in ("relative", "metric"):
            raise ToolError(f"{self.name}: option `output` must be 'relative' or 'metric', got {output!r}")
        self.metric = output == "metric"

    map_cache_entries = 16

    def depth(self, image: Image.Image, box: list[int] | None = None) -> float:
        out = self.depth_batch([image], [{"box": box} if box is not None else {}])[0]
        if isinstance(out, Exception):
            raise out
        return out

    def depth_map(self, image: Image.Image):
        """The relative depth map (H, W) as a float32 numpy array at the image's resolution."""
        return self._maps([image])[0]

    def depth_batch(self, images: list[Image.Image], args: list[dict[str, Any]]) -> list[Any]:
        def run(imgs: list[Image.Image], a: list[dict[str, Any]]) -> list[float]:
            import numpy as np

            out = []
            for m, kw in zip(self._cached_maps(imgs), a):
                box = kw.get("box")
                if box is not None:
                    h, w = m.shape
                    x0, y0, x1, y1 = (int(round(float(v))) for v in box)
                    x0, x1 = max(0, min(w, x0)), max(0, min(w, x1))
                    y0, y1 = max(0, min(h, y0)), max(0, min(h, y1))
                    region = m[y0:y1, x0:x1]
                    m = region if region.size else m
                out.append(float(np.median(m)))
            return out

        return chunked(run, images, args, self.max_batch)

    def _cached_maps(self, images: list[Image.Image]) -> list[Any]:
        """Depth maps of ``images``, each distinct image computed once (LRU across calls)."""
        from collections import OrderedDict

        from vpd.images import image_digest

        cache = self.__dict__.setdefault("_map_cache", OrderedDict())
        keys = [image_digest(im) for im in images]
        todo = {k: im for k, im in zip(keys, images) if k not in cache}
        if todo:
            for k, m in zip(todo, self._maps(list(todo.values()))):
                cache[k] = m
        out = []
        for k in keys:
            cache.move_to_end(k)
            out.append(cache[k])
        while len(cache) > self.map_cache_entries:
            cache.popitem(last=False)
        return out

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
