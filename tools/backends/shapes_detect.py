"""Pixels -> coloured shapes, with OpenCV and numpy. Never looks at any scene record.

Pipeline (:func:`detect_objects`):

1. HSV; a pixel is *coloured* if saturation >= ``MIN_SAT`` and value >= ``MIN_VAL`` (the
   background, shadows and grey strokes are unsaturated);
2. each coloured pixel gets the nearest named hue (:data:`HUE_DEG`), if within ``MAX_HUE_DIST``;
3. per colour: morphological opening (drops 1-2 px speckles and the blended seams where two
   colours touch), closing, external contours, filled; components smaller than ``MIN_AREA`` px
   are noise;
4. shape from the convex hull: *triangle* if the hull fills its minimum enclosing triangle
   (and not its box); else *cylinder* if the box is clearly taller than wide; else *cube* if the
   hull fills its box, *sphere* otherwise (a disc fills pi/4 of its box). Using the hull makes the
   features robust to a corner hidden by another object;
5. size from the longer side of the box: ``large`` if >= ``LARGE_MIN_SIDE`` px;
6. confidence (``score``, 0..1): the shape fit, times the colour purity (how close the blob's
   pixels lie to its named hue: 1 at the centre, 0.5 at ``MAX_HUE_DIST``), times a size factor
   (blobs under ``CONFIDENT_AREA`` px score proportionally less). Blurred, tinted, tiny or merged
   blobs score low, so a program can weigh or threshold detections.

Boxes are ``(x0, y0, x1, y1)`` in pixels of the given image, origin top-left, ``x1``/``y1``
exclusive (``x1 - x0`` is the width).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

#: Named hues in degrees (the backend's colour vocabulary).
HUE_DEG: dict[str, float] = {"red": 358.0, "orange": 29.0, "yellow": 56.0, "green": 129.0,
                             "cyan": 185.0, "blue": 227.0, "purple": 279.0}
MIN_SAT = 90  # of 255
MIN_VAL = 50  # of 255
MAX_HUE_DIST = 22.0  # degrees
MIN_AREA = 60  # px
LARGE_MIN_SIDE = 33  # px
CONFIDENT_AREA = 200  # px: blobs at least this large get no size penalty

_KERNEL = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (3, 3))


@dataclass(frozen=True, kw_only=True)
class DetectedObject:
    """One object found in the pixels. ``box`` is (x0, y0, x1, y1), pixels, origin top-left, y down."""

    color: str
    shape: str
    size: str
    box: tuple[int, int, int, int]
    area: int  # visible pixels
    score: float  # 0..1, how cleanly the silhouette fits its shape class

    @property
    def description(self) -> str:
        return f"{self.size} {self.color} {self.shape}"

    @property
    def longer_side(self) -> int:
        x0, y0, x1, y1 = self.box
        return max(x1 - x0, y1 - y0)


def _hue_lut() -> np.ndarray:
    """OpenCV hue (0..179, 2 degrees a step) -> colour index into ``list(HUE_DEG)``, 255 if none is near."""
    centres = np.array(list(HUE_DEG.values()), np.float32)
    deg = np.arange(180, dtype=np.float32)[:, None] * 2.0
    d = np.abs(deg - centres[None, :])
    d = np.minimum(d, 360.0 - d)
    idx = np.argmin(d, axis=1)
    return np.where(d[np.arange(180), idx] <= MAX_HUE_DIST, idx, 255).astype(np.uint8)


_LUT = _hue_lut()


def _hue_dist_lut() -> np.ndarray:
    """OpenCV hue -> distance in degrees to the nearest named hue."""
    centres = np.array(list(HUE_DEG.values()), np.float32)
    d = np.abs(np.arange(180, dtype=np.float32)[:, None] * 2.0 - centres[None, :])
    return np.minimum(d, 360.0 - d).min(axis=1).astype(np.float32)


_DIST = _hue_dist_lut()


def colour_labels(rgb: np.ndarray, hsv: np.ndarray | None = None) -> np.ndarray:
    """Per-pixel colour index into ``list(HUE_DEG)`` (uint8), 255 where not a named colour."""
    if hsv is None:
        hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
    coloured = (hsv[:, :, 1] >= MIN_SAT) & (hsv[:, :, 2] >= MIN_VAL)
    return np.where(coloured, _LUT[hsv[:, :, 0]], 255).astype(np.uint8)


def classify_shape(contour: np.ndarray) -> tuple[str, float]:
    """Shape name and a fit score in 0..1 from one external contour (OpenCV format)."""
    hull = cv2.convexHull(contour)
    hull_area = float(cv2.contourArea(hull))
    x, y, w, h = cv2.boundingRect(hull)
    if hull_area <= 0 or w == 0 or h == 0:
        return "cube", 0.0
    box_fill = hull_area / float(w * h)
    tri_area, _ = cv2.minEnclosingTriangle(hull.astype(np.float32))
    tri_fill = hull_area / float(tri_area) if tri_area > 0 else 0.0
    aspect = h / float(w)
    if tri_fill >= 0.82 and box_fill <= 0.68:
        return "triangle", min(1.0, tri_fill)
    if aspect >= 1.3:
        return "cylinder", min(1.0, box_fill)
    if box_fill >= 0.815:  # disc: pi/4 = 0.785 (pixelised: 0.71-0.78); square: 0.85-0.96
        return "cube", min(1.0, box_fill)
    return "sphere", float(max(0.0, 1.0 - abs(box_fill - np.pi / 4) * 3))


def detect_objects(image: Image.Image | np.ndarray) -> list[DetectedObject]:
    """Every coloured shape in ``image`` (RGB), sorted by box (left to right, then top to bottom)."""
    rgb = np.asarray(image.convert("RGB") if isinstance(image, Image.Image) else image, np.uint8)
    if rgb.ndim != 3 or rgb.shape[0] == 0 or rgb.shape[1] == 0:
        return []
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
    labels = colour_labels(rgb, hsv)
    hue_dist = _DIST[hsv[:, :, 0]]
    names = list(HUE_DEG)
    out: list[DetectedObject] = []
    for ci in np.unique(labels):
        if ci == 255:
            continue
        mask = (labels == ci).astype(np.uint8) * 255
        mask = cv2.morphologyEx(mask, cv2.MORPH_OPEN, _KERNEL)
        mask = cv2.morphologyEx(mask, cv2.MORPH_CLOSE, _KERNEL)
        contours, _ = cv2.findContours(mask, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
        for c in contours:
            area = float(cv2.contourArea(c))
            if area < MIN_AREA:
                continue
            x, y, w, h = cv2.boundingRect(c)
            shape, fit = classify_shape(c)
            size = "large" if max(w, h) >= LARGE_MIN_SIDE else "small"
            score = fit * _purity(c, labels == ci, hue_dist, (x, y, w, h)) * min(1.0, area / CONFIDENT_AREA)
            out.append(DetectedObject(color=names[int(ci)], shape=shape, size=size,
                                      box=(x, y, x + w, y + h), area=int(area), score=round(float(score), 3)))
    out.sort(key=lambda o: (o.box[0], o.box[1]))
    return out


def _purity(contour: np.ndarray, same: np.ndarray, hue_dist: np.ndarray, rect: tuple[int, int, int, int]) -> float:
    """Colour purity of a blob in 0.5..1: 1 - mean hue distance / (2 ``MAX_HUE_DIST``) over its
    pixels of its colour, times the share of its filled area that has its colour."""
    x, y, w, h = rect
    fill = np.zeros((h, w), np.uint8)
    cv2.drawContours(fill, [contour - np.array([[x, y]])], -1, 1, thickness=cv2.FILLED)
    inside = fill.astype(bool)
    own = inside & same[y:y + h, x:x + w]
    if not own.any():
        return 0.5
    closeness = 1.0 - float(hue_dist[y:y + h, x:x + w][own].mean()) / (2.0 * MAX_HUE_DIST)
    share = float(own.sum()) / max(1, int(inside.sum()))
    return max(0.0, min(1.0, closeness * (0.5 + 0.5 * share)))
