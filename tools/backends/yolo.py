"""Ultralytics YOLO detection: closed-vocabulary COCO YOLO and open-vocabulary YOLO-World.

* ``ultralytics`` (``model_path``: a local ``.pt``, e.g. yolov8x.pt / yolo11x.pt). The query is
  mapped to the model's class names: the longest class name (or a known synonym / plural, e.g.
  "people" -> person, "cars" -> car) found as words in the query; "red car" detects ``car``. A
  query naming no class raises :class:`UnsupportedQuery` (never a guess). Labels are class names.
  One forward pass finds every class (the image *analysis*, cached per image by the toolbox);
  a query filters it, so further queries on an image cost no model call.
* ``yolo_world`` (``model_path``: e.g. yolov8x-worldv2.pt): the query becomes the class via
  ``set_classes``. Text embeddings come from ``clip_text_model`` (a local transformers CLIP
  ViT-B/32 folder, i.e. openai/clip-vit-base-patch32 — the text tower YOLO-World was trained
  with; normalised like Ultralytics does) or, without it, from Ultralytics' own ``set_classes``
  (which needs the ``clip`` package and its weights). Labels are the query.

Both: ``threshold`` (confidence, default 0.25), ``iou`` (NMS, 0.7), ``imgsz`` (640), ``dtype``
(``auto``/``float32``, or ``float16`` on a GPU when asked; Ultralytics has no bfloat16). Boxes are
pixels of the input image (x0, y0, x1, y1), highest score first. A ``model_path`` ending in
``.yaml`` (e.g. ``yolov8n.yaml``) builds a random-init model: for tests only.
Batches are grouped by image shape (Ultralytics letterboxes mixed shapes differently), so batched
results equal one-by-one results.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Mapping

from PIL import Image

from vpd.tools.backend import register_backend
from vpd.tools.backends._hf import ModelBackend, chunked
from vpd.tools.backends._weights import weight_hash
from vpd.tools.errors import ToolError, UnsupportedQuery
from vpd.types import Box

COCO_CLASSES = (
    "person", "bicycle", "car", "motorcycle", "airplane", "bus", "train", "truck", "boat", "traffic light",
    "fire hydrant", "stop sign", "parking meter", "bench", "bird", "cat", "dog", "horse", "sheep", "cow",
    "elephant", "bear", "zebra", "giraffe", "backpack", "umbrella", "handbag", "tie", "suitcase", "frisbee",
    "skis", "snowboard", "sports ball", "kite", "baseball bat", "baseball glove", "skateboard", "surfboard",
    "tennis racket", "bottle", "wine glass", "cup", "fork", "knife", "spoon", "bowl", "banana", "apple",
    "sandwich", "orange", "broccoli", "carrot", "hot dog", "pizza", "donut", "cake", "chair", "couch",
    "potted plant", "bed", "dining table", "toilet", "tv", "laptop", "mouse", "remote", "keyboard",
    "cell phone", "microwave", "oven", "toaster", "sink", "refrigerator", "book", "clock", "vase", "scissors",
    "teddy bear", "hair drier", "toothbrush")

#: Common words for COCO classes (query word -> class name).
SYNONYMS = {
    "people": "person", "man": "person", "men": "person", "woman": "person", "women": "person",
    "child": "person", "children": "person", "kid": "person", "kids": "person", "boy": "person",
    "girl": "person", "human": "person", "player": "person", "bike": "bicycle", "motorbike": "motorcycle",
    "plane": "airplane", "aeroplane": "airplane", "sofa": "couch", "television": "tv", "monitor": "tv",
    "phone": "cell phone", "cellphone": "cell phone", "mobile phone": "cell phone", "table": "dining table",
    "ball": "sports ball", "doughnut": "donut", "fridge": "refrigerator", "plant": "potted plant",
    "hairdryer": "hair drier", "hair dryer": "hair drier", "puppy": "dog", "kitten": "cat", "ship": "boat",
    "automobile": "car", "taxi": "car", "glass": "wine glass", "mug": "cup", "racket": "tennis racket",
}


def _singular(word: str) -> str:
    for suffix, repl in (("ies", "y"), ("ves", "f"), ("ches", "ch"), ("shes", "sh"), ("sses", "ss"), ("uses", "us"),
                         ("xes", "x"), ("s", "")):
        if word.endswith(suffix) and len(word) > len(suffix) and not word.endswith("ss"):
            return word[: -len(suffix)] + repl
    return word


def query_to_class(query: str, names: list[str]) -> str:
    """The class of ``names`` the query names (longest match, synonyms and plurals); else UnsupportedQuery."""
    words = re.findall(r"[a-z]+", query.lower())
    forms = [words, [_singular(w) for w in words]]
    lookup = {n.lower(): n for n in names}
    best: str | None = None
    for ws in forms:
        text = f" {' '.join(ws)} "
        for cand in sorted(set(lookup) | set(SYNONYMS), key=len, reverse=True):
            if f" {cand} " in text:
                target = lookup.get(cand) or lookup.get(SYNONYMS.get(cand, ""))
                if target and (best is None or len(cand) > len(best)):
                    best = target
                break
    if best is None:
        raise UnsupportedQuery(f"query {query!r} names none of this detector's {len(names)} classes "
                               f"(e.g. {', '.join(names[:8])}…); use an open-vocabulary detector (yolo_world, owlv2, "
                               "groundingdino) for other objects")
    return best


class _Yolo(ModelBackend):
    provides = frozenset({"detect"})
    batchable = frozenset({"detect"})
    max_batch = 16
    weight_kind = "file"
    needs = "ultralytics; a local .pt checkpoint"
    settings = {**ModelBackend.settings, "threshold": 0.25, "iou": 0.7, "imgsz": 640}
    key_settings = ModelBackend.key_settings | {"threshold", "iou", "imgsz"}

    def path(self, key: str) -> Path:
        value = str(self.options.get(key, self.weight_keys.get(key, "")))
        if key == "model_path" and value.endswith(".yaml") and not Path(value).exists():
            self.paths[key] = Path(value)  # a packaged architecture: random-init model (tests)
            return self.paths[key]
        return super().path(key)

    def _load(self) -> None:
        from ultralytics import YOLO

        import torch

        self.model = YOLO(str(self.paths["model_path"]), verbose=False)
        self.threshold = self.setting("threshold")
        self.iou = self.setting("iou")
        self.imgsz = self.setting("imgsz")
        if self.dtype == torch.bfloat16 and self.setting("dtype") != "auto":
            raise ToolError(f"{self.name}: Ultralytics predicts in float32 or float16, not bfloat16")
        self.half = self.device.startswith("cuda") and self.dtype == torch.float16
        self.dtype = torch.float16 if self.half else torch.float32  # auto never means float16 here

    def weight_hash(self) -> str:
        if self._hash is None:
            p = self.paths["model_path"]
            self._hash = weight_hash(*self.paths.values()) if p.exists() else f"random-{p.name}"
        return self._hash

    def _predict(self, images: list[Image.Image]) -> list[list[Box]]:
        """One predict call on images of one shape; class names from the model."""
        kw: dict[str, Any] = {"half": True} if self.half else {}
        results = self.model.predict([im for im in images], conf=self.threshold, iou=self.iou, imgsz=self.imgsz,
                                     device=self.device, verbose=False, **kw)
        out = []
        for r in results:
            names = r.names
            xyxy = r.boxes.xyxy.float().cpu().tolist()
            conf = r.boxes.conf.float().cpu().tolist()
            cls = r.boxes.cls.int().cpu().tolist()
            boxes = [Box(x0=b[0], y0=b[1], x1=b[2], y1=b[3], score=c, label=str(names[k]))
                     for b, c, k in zip(xyxy, conf, cls)]
            out.append(sorted(boxes, key=lambda b: -b.score))
        return out

    def detect(self, image: Image.Image, query: str) -> list[Box]:
        out = self.detect_batch([image], [{"query": query}])[0]
        if isinstance(out, Exception):
            raise out
        return out


@register_backend("ultralytics")
class UltralyticsBackend(_Yolo):
    """YOLOv8/YOLO11 trained on COCO (80 classes)."""

    weight_keys = {"model_path": "/models/yolo/yolo11x.pt"}
    text_args = {"detect": "fold"}  # query_to_class reads lower-cased words; labels are class names

    def class_names(self) -> list[str]:
        names = self.model.names
        names = [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names)
        if len(names) == len(COCO_CLASSES) and all(str(n).isdigit() for n in names):
            return list(COCO_CLASSES)  # an architecture yaml without names: COCO order
        return [str(n) for n in names]

    analysed = frozenset({"detect"})

    def analyse(self, image: Image.Image) -> list[list[Any]]:
        out = self.analyse_batch([image])[0]
        if isinstance(out, Exception):
            raise out
        return out

    def analyse_batch(self, images: list[Image.Image]) -> list[Any]:
        """Every detection per image as ``[x0, y0, x1, y1, score, class name]`` rows (pixels,
        highest score first); images are grouped by shape so batched equals one-by-one."""
        names = self.class_names()
        out: list[Any] = [None] * len(images)
        groups: dict[tuple[int, int], list[int]] = {}
        for i, im in enumerate(images):
            groups.setdefault(im.size, []).append(i)
        for idx in groups.values():
            dets = chunked(lambda ims, _a: self._predict(ims), [images[i] for i in idx], [{}] * len(idx),
                           self.max_batch)
            for i, d in zip(idx, dets):
                out[i] = d if isinstance(d, Exception) else [
                    [b.x0, b.y0, b.x1, b.y1, b.score, _class_name(b.label, names)] for b in d]
        return out

    def canonical_args(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """A detect query keys as the class it names ("two people" = "person"); labels are class names."""
        if tool == "detect" and set(args) == {"query"} and isinstance(args["query"], str):
            try:
                return {"query": query_to_class(args["query"], self.class_names())}
            except UnsupportedQuery:  # the call fails anyway; key it as given
                return super().canonical_args(tool, args)
        return super().canonical_args(tool, args)

    def answer_context(self) -> dict[str, Any]:
        return {"classes": self.class_names()}

    @classmethod
    def answer_from(cls, context: Mapping[str, Any], tool: str, analysis: Any, query: str) -> list[Box]:
        """The analysis rows of the class the query names (``context["classes"]``: the model's class names)."""
        wanted = query_to_class(str(query), list(context["classes"]))
        return [Box(x0=r[0], y0=r[1], x1=r[2], y1=r[3], score=r[4], label=wanted) for r in analysis if r[5] == wanted]

    def detect_batch(self, images: list[Image.Image], args: list[dict[str, Any]]) -> list[Any]:
        return self.run_batch("detect", list(images), list(args))

    def detect(self, image: Image.Image, query: str) -> list[Box]:
        return self.run("detect", image, query=query)


def _class_name(label: str, names: list[str]) -> str:
    """A predicted label as a class name (architectures without names label by index)."""
    return names[int(label)] if label.isdigit() and int(label) < len(names) else label


@register_backend("yolo_world")
class YoloWorldBackend(_Yolo):
    """YOLO-World v2: open vocabulary through ``set_classes``."""

    weight_keys = {"model_path": "/models/yolo/yolov8x-worldv2.pt", "clip_text_model": "/models/clip-vit-base-patch32"}
    lazy_keys = frozenset({"clip_text_model"})
    weight_kinds = {"clip_text_model": "dir"}
    needs = "ultralytics; a local YOLO-World .pt + local CLIP ViT-B/32 folder (transformers) for text embeddings"
    text_args = {"detect": "space"}  # the query is whitespace-collapsed, then both embedded and echoed as label

    def _load(self) -> None:
        super()._load()
        self._text: dict[str, Any] = {}
        self.clip = None
        if self.options.get("clip_text_model", self.weight_keys["clip_text_model"]) is not None:
            try:
                path = self.path("clip_text_model")
            except FileNotFoundError:
                if "clip_text_model" in self.options:
                    raise
                path = None  # default location absent: fall back to Ultralytics' own CLIP
            if path is not None:
                from transformers import CLIPModel, CLIPTokenizer

                self.clip_tokenizer = CLIPTokenizer.from_pretrained(path)
                self.clip = CLIPModel.from_pretrained(path).eval()

    def text_embedding(self, query: str):
        """(512,) L2-normalised CLIP text embedding of ``query`` (cached)."""
        import torch

        if query not in self._text:
            tok = self.clip_tokenizer([query], padding=True, return_tensors="pt")
            with torch.inference_mode():
                out = self.clip.get_text_features(**tok)
            feats = out if isinstance(out, torch.Tensor) else out.pooler_output
            self._text[query] = (feats / feats.norm(p=2, dim=-1, keepdim=True))[0].float()
        return self._text[query]

    def _set_query(self, query: str) -> None:
        if self.clip is None:
            self.model.set_classes([query])
            return
        inner = self.model.model
        param = next(inner.parameters())
        inner.txt_feats = self.text_embedding(query).reshape(1, 1, -1).to(param.device, dtype=param.dtype)
        inner.model[-1].nc = 1
        inner.names = {0: query}
        self.model.predictor = None  # Ultralytics re-reads names / nc on the next predict

    def detect_batch(self, images: list[Image.Image], args: list[dict[str, Any]]) -> list[Any]:
        out: list[Any] = [None] * len(images)
        groups: dict[tuple[str, tuple[int, int]], list[int]] = {}
        for i, (im, a) in enumerate(zip(images, args)):
            q = " ".join(str(a["query"]).split()) or "object"
            groups.setdefault((q, im.size), []).append(i)
        for (q, _), idx in groups.items():
            try:
                self._set_query(q)
            except Exception as exc:
                for i in idx:
                    out[i] = exc
                continue
            dets = chunked(lambda ims, _a: self._predict(ims), [images[i] for i in idx], [{}] * len(idx),
                           self.max_batch)
            for i, d in zip(idx, dets):
                out[i] = d if isinstance(d, Exception) else [
                    Box(x0=b.x0, y0=b.y0, x1=b.x1, y1=b.y1, score=b.score, label=q) for b in d]
        return out
