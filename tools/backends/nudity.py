"""NudeNet nudity detection (the ONNX model ships inside the ``nudenet`` package).

``nudity(image)`` -> boxes in pixels (x0, y0, x1, y1), ``label`` the NudeNet class (e.g.
``FACE_FEMALE``, ``FEMALE_BREAST_EXPOSED``, ``BELLY_COVERED``), ``score`` its confidence; classes in
option ``classes`` only (default: all 18), scores below ``threshold`` (default 0.25) dropped.
Not only nudity: NudeNet also reports faces, feet and covered parts, which tells a moderation
program that the model saw a person at all. Option ``model_path`` for another NudeNet ONNX file.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from vpd.tools.backend import Backend, register_backend
from vpd.tools.backends._hf import chunked
from vpd.tools.backends._runtime import resolve_weights
from vpd.tools.backends._weights import weight_hash
from vpd.types import Box


def _packaged_model() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("nudenet")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "320n.onnx"


@register_backend("nudenet")
class NudeNetBackend(Backend):
    """NudeNet v3 detector (320n ONNX, onnxruntime on CPU)."""

    provides = frozenset({"nudity"})
    batchable = frozenset({"nudity"})
    max_batch = 8
    memory_class = "cpu-small"
    needs = "nudenet (320n.onnx inside the package)"
    settings = {"threshold": 0.25, "classes": (), "resolution": 320}
    key_settings = frozenset({"threshold", "classes", "resolution"})
    weight_options = frozenset({"model_path"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        from nudenet import NudeDetector

        default = _packaged_model()
        self.model_path = resolve_weights(self.name, "model_path", options.get("model_path") or default,
                                          kind="file", hint="pip install nudenet")
        self.detector = NudeDetector(model_path=str(self.model_path), inference_resolution=self.setting("resolution"))
        self.threshold = self.setting("threshold")
        self.classes = frozenset(self.setting("classes") or ())

    def effective_setting(self, name: str) -> Any:
        if name == "classes":
            return sorted(self.classes)  # a filter: order and repeats do not matter
        return super().effective_setting(name)

    def weight_hash(self) -> str:
        return weight_hash(self.model_path)

    @classmethod
    def weights_status(cls, options: dict[str, Any] | None = None) -> str:
        path = (options or {}).get("model_path") or _packaged_model()
        return f"found: {path}" if path and Path(path).is_file() else f"missing: model_path={path}"

    def _boxes(self, dets: list[dict[str, Any]]) -> list[Box]:
        out = []
        for d in dets:
            if d["score"] < self.threshold or (self.classes and d["class"] not in self.classes):
                continue
            x, y, w, h = (float(v) for v in d["box"])
            out.append(Box(x0=x, y0=y, x1=x + w, y1=y + h, score=float(d["score"]), label=str(d["class"])))
        return sorted(out, key=lambda b: -b.score)

    @staticmethod
    def _bgr(image: Image.Image):
        import numpy as np

        return np.ascontiguousarray(np.asarray(image.convert("RGB"))[:, :, ::-1])

    def nudity(self, image: Image.Image) -> list[Box]:
        return self._boxes(self.detector.detect(self._bgr(image)))

    def nudity_batch(self, images: list[Image.Image], args: list[dict[str, Any]]) -> list[Any]:
        def run(imgs: list[Image.Image], _: list[dict[str, Any]]) -> list[list[Box]]:
            dets = self.detector.detect_batch([self._bgr(im) for im in imgs], batch_size=len(imgs))
            return [self._boxes(d) for d in dets]

        return chunked(run, images, args, self.max_batch)
