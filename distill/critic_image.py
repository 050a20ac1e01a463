"""An image-aware LSKD critic: it looks at the pixels of the regions a triple cites.

LSKD's critic is a multimodal image–text model; the text-only critic (:mod:`vpd.distill.critic`)
reads only the triple and the tools' verbalisation, so a triple that repeats a tool's mistake
("[0] is red" about a blue region that the tool called red) looks right to it. This critic adds:

* **crop descriptors** (:func:`crop_descriptor`, deterministic, ``CROP_DIM`` numbers per region):
  the foreground colour histogram of the region's box (12 hue bins weighted by saturation + dark /
  grey / light bins; foreground = pixels far from the box border's median colour), the mean
  foreground RGB, the foreground fraction and the box's relative area and aspect; optionally the
  mean-pooled vision-encoder tokens of the crop from a student checkpoint (:class:`StudentCropEncoder`);
* **a pixels-to-text map** ``P`` (ridge regression, fitted on the training images' regions): crop
  descriptor -> the MiniLM embedding of the region's description, so a crop can be compared with text;
* **agreement features**: for the first two cited regions, the cosine of ``P(crop)`` with the MiniLM
  embeddings of the answer, the rationale and the tools' description of that region, and how much
  better the answer fits this crop than the image's other regions.

These are joined with the text-only critic's features; the classifier is the same balanced logistic
regression. Saved as plain arrays (``image_critic.npz``) + ``image_critic.json``; boxes are
``x0, y0, x1, y1`` pixels, origin top-left.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from vpd.distill.critic import EMBED_DIM, MiniLMEmbedder, critic_features, evaluate_scores, split_by_image
from vpd.distill.lskd import Triple
from vpd.distill.verbalize import Verbalisation

IMAGE_CRITIC_VERSION = "1"
HUE_BINS = 12
CROP_DIM = HUE_BINS + 3 + 3 + 1 + 2
AGREE = ("cos_answer", "cos_rationale", "cos_description", "answer_margin")
N_CITED = 2  # regions per triple whose pixels are looked at (question refs first)


def crop_descriptor(image: np.ndarray, box: Sequence[float]) -> np.ndarray:
    """``Float[CROP_DIM]`` colour/shape descriptor of ``box`` in ``image`` (``uint8 [H, W, 3]``)."""
    h, w = image.shape[:2]
    x0, y0, x1, y1 = (int(round(v)) for v in box[:4])
    x0, y0, x1, y1 = max(0, x0), max(0, y0), min(w, max(x1, x0 + 1)), min(h, max(y1, y0 + 1))
    crop = image[y0:y1, x0:x1].astype(np.float32)
    if crop.size == 0:
        return np.zeros(CROP_DIM, np.float32)
    border = np.concatenate([crop[0], crop[-1], crop[:, 0], crop[:, -1]])
    bg = np.median(border, axis=0)
    fg = np.linalg.norm(crop - bg, axis=-1) > 40.0
    frac = float(fg.mean())
    px = crop[fg] if fg.sum() >= max(4, 0.03 * fg.size) else crop.reshape(-1, 3)
    rgb = px / 255.0
    mx, mn = rgb.max(1), rgb.min(1)
    sat = np.where(mx > 0, (mx - mn) / np.maximum(mx, 1e-6), 0.0)
    d = np.maximum(mx - mn, 1e-6)
    r, g, b = rgb[:, 0], rgb[:, 1], rgb[:, 2]
    hue = np.where(mx == r, ((g - b) / d) % 6, np.where(mx == g, (b - r) / d + 2, (r - g) / d + 4)) / 6.0
    chroma = sat > 0.25
    hist = np.bincount((hue[chroma] * HUE_BINS).astype(int) % HUE_BINS, weights=sat[chroma], minlength=HUE_BINS)
    grey = ~chroma
    achro = np.asarray([np.sum(grey & (mx < 0.3)), np.sum(grey & (mx >= 0.3) & (mx < 0.75)), np.sum(grey & (mx >= 0.75))],
                       np.float32)
    total = hist.sum() + achro.sum()
    hist, achro = (hist / total, achro / total) if total > 0 else (hist, achro)
    area = (x1 - x0) * (y1 - y0) / float(w * h)
    aspect = np.log((x1 - x0) / max(1, y1 - y0))
    return np.concatenate([hist, achro, rgb.mean(0), [frac, area, aspect]]).astype(np.float32)


class StudentCropEncoder:
    """Mean-pooled vision-encoder tokens of crops, from a student checkpoint (``vpd train --out``)."""

    def __init__(self, checkpoint: str | Path) -> None:
        import jax

        from vpd.distill.vlm_checkpoint import load_student

        model, _, _ = load_student(checkpoint)
        self.checkpoint, self.size = str(checkpoint), model.config.vision.image_size
        self.dim = model.config.vision.width
        self._fn = jax.jit(lambda px: model.vision(px).mean(axis=1))

    def encode(self, crops: Sequence[np.ndarray]) -> np.ndarray:
        """``Float[N, D]`` for ``uint8 [h, w, 3]`` crops (each resized to the student's input)."""
        from PIL import Image

        from vpd.distill.vlm_preprocess import normalize, resize_uint8

        if not crops:
            return np.zeros((0, self.dim), np.float32)
        px = np.stack([resize_uint8(Image.fromarray(c), self.size) for c in crops])
        return np.asarray(self._fn(normalize(px)), np.float32)


class RegionPixels:
    """Crop descriptors of verbalised regions, each image decoded once."""

    def __init__(self, student: StudentCropEncoder | None = None) -> None:
        self.student = student
        self._cache: dict[tuple[str, tuple[float, ...]], np.ndarray] = {}

    @property
    def dim(self) -> int:
        return CROP_DIM + (self.student.dim if self.student else 0)

    def describe(self, image: str, boxes: Sequence[Sequence[float]]) -> np.ndarray:
        """``Float[len(boxes), dim]``; an unreadable image gives zeros (scored, never fatal)."""
        keys = [(image, tuple(float(v) for v in b[:4])) for b in boxes]
        todo = [k for k in dict.fromkeys(keys) if k not in self._cache]
        if todo:
            from vpd.images import load_image

            try:
                arr = np.asarray(load_image(image).convert("RGB"), np.uint8)
            except (OSError, ValueError):
                arr = None
            feats = [crop_descriptor(arr, k[1]) if arr is not None else np.zeros(CROP_DIM, np.float32) for k in todo]
            if self.student is not None:
                crops = [_crop(arr, k[1]) if arr is not None else np.zeros((8, 8, 3), np.uint8) for k in todo]
                emb = self.student.encode(crops)
                feats = [np.concatenate([f, e]) for f, e in zip(feats, emb)]
            self._cache.update(zip(todo, feats))
        return np.stack([self._cache[k] for k in keys]) if keys else np.zeros((0, self.dim), np.float32)


def _crop(arr: np.ndarray, box: Sequence[float]) -> np.ndarray:
    h, w = arr.shape[:2]
    x0, y0 = max(0, int(box[0])), max(0, int(box[1]))
    x1, y1 = min(w, max(int(round(box[2])), x0 + 1)), min(h, max(int(round(box[3])), y0 + 1))
    return arr[y0:y1, x0:x1]


def _boxes(v: Verbalisation) -> list[list[float]]:
    return [[r.box.x0, r.box.y0, r.box.x1, r.box.y1] for r in v.regions]


def fit_pixel_text_map(verbs: Sequence[Verbalisation], pixels: RegionPixels, embedder: Any,
                       ridge: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(mean, scale, W)``: standardised crop descriptor (+ 1) @ ``W`` ~ MiniLM(region description)."""
    xs, texts = [], []
    for v in verbs:
        if v.regions:
            xs.append(pixels.describe(v.image, _boxes(v)))
            texts.extend(r.description for r in v.regions)
    if not texts:
        raise ValueError("no verbalised regions to fit the pixels-to-text map on")
    x = np.concatenate(xs)
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-6] = 1.0
    xb = np.concatenate([(x - mean) / scale, np.ones((len(x), 1), np.float32)], axis=1)
    y = embedder.encode(texts)
    w = np.linalg.solve(xb.T @ xb + ridge * np.eye(xb.shape[1]), xb.T @ y)
    return mean.astype(np.float32), scale.astype(np.float32), w.astype(np.float32)


def _unit(a: np.ndarray) -> np.ndarray:
    return a / np.maximum(np.linalg.norm(a, axis=-1, keepdims=True), 1e-9)


def image_features(triples: Sequence[Triple], verbs: Sequence[Verbalisation | None], pixels: RegionPixels,
                   pmap: tuple[np.ndarray, np.ndarray, np.ndarray], embedder: Any) -> np.ndarray:
    """``Float[N, N_CITED * (dim + len(AGREE))]``: crops and agreement of the cited regions
    (``verbs[i]`` is the verbalisation triple ``i`` is judged against)."""
    mean, scale, w = pmap
    width = pixels.dim + len(AGREE)
    if not triples:
        return np.zeros((0, N_CITED * width), np.float32)
    texts = list(dict.fromkeys([t.answer for t in triples] + [t.rationale for t in triples]
                               + [r.description for v in verbs if v is not None for r in v.regions]))
    table = embedder.encode(texts)
    pos = {s: i for i, s in enumerate(texts)}
    out = np.zeros((len(triples), N_CITED * width), np.float32)
    for i, (t, v) in enumerate(zip(triples, verbs)):
        if v is None or not v.regions:
            continue
        crops = pixels.describe(v.image, _boxes(v))
        proj = _unit(np.concatenate([(crops - mean) / scale, np.ones((len(crops), 1), np.float32)], 1) @ w)
        row = {r.id: j for j, r in enumerate(v.regions)}
        e_ans, e_rat = table[pos[t.answer]], table[pos[t.rationale]]
        ans_all = proj @ e_ans
        cited = [k for k in dict.fromkeys(t.question_refs + t.refs) if k in row][:N_CITED]
        for slot, k in enumerate(cited):
            j = row[k]
            others = np.delete(ans_all, j)
            agree = [ans_all[j], proj[j] @ e_rat, proj[j] @ table[pos[v.regions[j].description]],
                     ans_all[j] - (others.max() if len(others) else 0.0)]
            out[i, slot * width:(slot + 1) * width] = np.concatenate([crops[j], agree])
    return out


def text_features(triples: Sequence[Triple], per: Sequence[Verbalisation | None], embedder: Any) -> np.ndarray:
    """The text-only critic's features, each triple judged against its own verbalisation ``per[i]``."""
    text = critic_features([], {}, embedder)
    text = np.zeros((len(triples), text.shape[1]), np.float32)
    for v in {id(v): v for v in per}.values():  # critic_features takes a mapping by image
        idx = [i for i, u in enumerate(per) if u is v]
        text[idx] = critic_features([triples[i] for i in idx], {} if v is None else {triples[idx[0]].image: v}, embedder)
    return text


class ImageCritic:
    """Text-critic features + cited-region pixels -> logistic regression (all plain arrays)."""

    def __init__(self, *, arrays: Mapping[str, np.ndarray], meta: dict[str, Any], embedder: Any = None,
                 student: StudentCropEncoder | None = None) -> None:
        self.a = dict(arrays)
        self.meta = dict(meta)
        self.embedder = embedder or MiniLMEmbedder()
        self.pixels = RegionPixels(student)

    @property
    def pmap(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        return self.a["p_mean"], self.a["p_scale"], self.a["p_w"]

    def features(self, triples: Sequence[Triple], verbs: Mapping[str, Verbalisation] | Sequence[Verbalisation | None]
                 ) -> np.ndarray:
        """Features of ``triples``; ``verbs`` keyed by image, or one verbalisation per triple."""
        per = list(verbs) if not isinstance(verbs, Mapping) else [verbs.get(t.image) for t in triples]
        return np.concatenate([text_features(triples, per, self.embedder),
                               image_features(triples, per, self.pixels, self.pmap, self.embedder)], axis=1)

    def score_features(self, x: np.ndarray) -> np.ndarray:
        z = ((x - self.a["mean"]) / self.a["scale"]) @ self.a["coef"] + float(self.a["intercept"][0])
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def score(self, triples: Sequence[Triple], verbs: Any) -> np.ndarray:
        """``Float[N]`` acceptance probabilities in [0, 1]."""
        return self.score_features(self.features(triples, verbs))

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "image_critic.npz", **self.a)
        (folder / "image_critic.json").write_text(json.dumps({"version": IMAGE_CRITIC_VERSION, **self.meta},
                                                             indent=2, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, embedder: Any = None) -> "ImageCritic":
        folder = Path(folder)
        if not (folder / "image_critic.npz").is_file():
            raise FileNotFoundError(f"no image-aware critic at {folder} (expected image_critic.npz; train one with "
                                    "`vpd lskd compare-critics RUN --out DIR`)")
        with np.load(folder / "image_critic.npz") as d:
            arrays = {k: d[k] for k in d.files}
        meta = json.loads((folder / "image_critic.json").read_text())
        student = StudentCropEncoder(meta["student"]) if meta.get("student") else None
        return cls(arrays=arrays, meta=meta, embedder=embedder, student=student)


def train_image_critic(triples: Sequence[Triple], verbs: Mapping[str, Verbalisation], *, embedder: Any = None,
                       student: str | Path | None = None, train_idx: Sequence[int], c: float = 1.0,
                       threshold: float = 0.8, per_triple_verbs: Sequence[Verbalisation | None] | None = None
                       ) -> ImageCritic:
    """Fit on ``triples[train_idx]`` (labelled); the pixels-to-text map uses only those triples' images.

    ``per_triple_verbs`` overrides the verbalisation a triple is judged against (e.g. augmented
    triples whose verbalisation carries a simulated tool error)."""
    from sklearn.linear_model import LogisticRegression

    embedder = embedder or MiniLMEmbedder()
    enc = StudentCropEncoder(student) if student else None
    critic = ImageCritic(arrays={}, meta={}, embedder=embedder, student=enc)
    tr = list(train_idx)
    train_images = {triples[i].image for i in tr}
    p_mean, p_scale, p_w = fit_pixel_text_map([verbs[k] for k in sorted(train_images) if k in verbs],
                                              critic.pixels, embedder)
    critic.a.update(p_mean=p_mean, p_scale=p_scale, p_w=p_w)
    per = list(per_triple_verbs) if per_triple_verbs is not None else [verbs.get(t.image) for t in triples]
    sub = [triples[i] for i in tr]
    x = critic.features(sub, [per[i] for i in tr])
    y = np.asarray([bool(t.label) for t in sub])
    if len(set(y.tolist())) < 2:
        raise ValueError("the training labels hold only one class; the critic needs accepted and rejected triples")
    mean, scale = x.mean(0), x.std(0)
    scale[scale < 1e-6] = 1.0
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=3000).fit((x - mean) / scale, y)
    critic.a.update(mean=mean.astype(np.float32), scale=scale.astype(np.float32),
                    coef=clf.coef_[0].astype(np.float32), intercept=np.asarray([clf.intercept_[0]], np.float32))
    critic.meta.update(embedder=MiniLMEmbedder.name, classifier="logistic_regression", C=c, threshold=threshold,
                       n_train=len(tr), crop_dim=critic.pixels.dim, text_dim=2 * EMBED_DIM,
                       student=str(student) if student else None)
    return critic


def corrupt_verbalisation(v: Verbalisation, region_id: int, attr: str, value: str) -> Verbalisation:
    """``v`` with one region's ``attr`` replaced by ``value``: a simulated tool error."""
    regions = tuple(replace(r, attributes={**r.attributes, attr: value}) if r.id == region_id else r
                    for r in v.regions)
    return replace(v, regions=regions)


__all__ = ["CROP_DIM", "ImageCritic", "RegionPixels", "StudentCropEncoder", "corrupt_verbalisation",
           "crop_descriptor", "evaluate_scores", "fit_pixel_text_map", "image_features", "split_by_image",
           "train_image_critic"]
