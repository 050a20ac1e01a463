"""Rendering of a :class:`~vpd.benchmarks.shapes.Scene` with Pillow and numpy.

Objects are drawn at 2x and box-downsampled (anti-aliased edges), with shading: cubes get a
vertical gradient, spheres radial shading and a highlight, cylinders a horizontal gradient and a
lighter top cap, triangles a gradient. With ``scene.noise`` the background is textured
(low-frequency luminance, faint grey strokes, soft shadows) and the image gets Gaussian pixel
noise plus a few tiny coloured speckles, so detection from pixels is a real (if easy) problem.
Deterministic by the scene's seed and index.
"""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from vpd.benchmarks import shapes_effects as effects
from vpd.benchmarks.shapes import RGB, Scene, ShapeObject, _rng
from vpd.benchmarks.shapes_difficulty import get_difficulty

SS = 2  # supersampling factor


def _background(rng: np.random.Generator, w: int, h: int, noise: bool) -> np.ndarray:
    base = float(rng.uniform(150, 200))
    tint = rng.uniform(-6, 6, size=3)
    img = np.full((h, w, 3), base, np.float32) + tint
    # floor gradient: a little lighter at the top
    img += np.linspace(10, -10, h, dtype=np.float32)[:, None, None]
    if noise:
        low = rng.normal(0, 1, size=(6, 8)).astype(np.float32)
        low_img = Image.fromarray(((low - low.min()) / (np.ptp(low) + 1e-6) * 255).astype(np.uint8))
        tex = np.asarray(low_img.resize((w, h), Image.BICUBIC), np.float32) / 255.0 - 0.5
        img += tex[:, :, None] * float(rng.uniform(15, 35))
    return img


def _strokes(rng: np.random.Generator, canvas: Image.Image, n: int) -> None:
    """Faint grey lines and rings: texture distractors without colour."""
    d = ImageDraw.Draw(canvas)
    W, H = canvas.size
    for _ in range(n):
        g = int(rng.uniform(110, 230))
        x0, y0 = int(rng.integers(0, W)), int(rng.integers(0, H))
        x1, y1 = x0 + int(rng.integers(-120, 120)) * SS, y0 + int(rng.integers(-80, 80)) * SS
        if rng.random() < 0.6:
            d.line((x0, y0, x1, y1), fill=(g, g, g), width=int(rng.integers(1, 3)) * SS)
        else:
            r = int(rng.integers(6, 30)) * SS
            d.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), outline=(g, g, g), width=SS)


def _shape_mask(obj: ShapeObject, w: int, h: int) -> Image.Image:
    """Coverage mask ('L', 0/255) of the object in a ``w x h`` (supersampled) box."""
    m = Image.new("L", (w, h), 0)
    d = ImageDraw.Draw(m)
    if obj.shape == "cube":
        d.rectangle((0, 0, w - 1, h - 1), fill=255)
    elif obj.shape == "sphere":
        d.ellipse((0, 0, w - 1, h - 1), fill=255)
    elif obj.shape == "triangle":
        d.polygon([(w / 2, 0), (w - 1, h - 1), (0, h - 1)], fill=255)
    elif obj.shape == "cylinder":
        e = max(2, int(round(w * 0.18)))  # half-height of the elliptic caps
        d.rectangle((0, e, w - 1, h - 1 - e), fill=255)
        d.ellipse((0, 0, w - 1, 2 * e), fill=255)
        d.ellipse((0, h - 1 - 2 * e, w - 1, h - 1), fill=255)
    else:
        raise ValueError(f"unknown shape {obj.shape!r}")
    return m


def _shading(obj: ShapeObject, w: int, h: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Per-pixel brightness factor and white-blend weight for the object's box."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    white = np.zeros((h, w), np.float32)
    if obj.shape == "sphere":
        cx, cy, r = w * 0.38, h * 0.35, max(w, h) / 2
        d2 = ((xx - cx) ** 2 + (yy - cy) ** 2) / (r * r)
        factor = 1.08 - 0.42 * np.clip(d2, 0, 1.6) / 1.6 * 1.2
        white = 0.28 * np.exp(-d2 * 9.0)
    elif obj.shape == "cylinder":
        u = (xx / max(w - 1, 1)) * 2 - 1
        factor = 1.02 - 0.32 * (u + 0.3) ** 2
        e = max(2, int(round(w * 0.18)))
        cap = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - e) / e) ** 2 <= 1.0
        factor = np.where(cap, 1.05, factor)
        white = np.where(cap, 0.12, 0.0).astype(np.float32)
    elif obj.shape == "cube":
        factor = 1.0 - 0.18 * yy / max(h - 1, 1)
        edge = (xx < w * 0.08) | (yy < h * 0.08)
        white = np.where(edge, 0.1, 0.0).astype(np.float32)
    else:  # triangle
        factor = 1.03 - 0.2 * yy / max(h - 1, 1) - 0.06 * xx / max(w - 1, 1)
    factor = factor * float(rng.uniform(0.92, 1.05))
    return np.clip(factor, 0.5, 1.15).astype(np.float32), white


def render(scene: Scene) -> Image.Image:
    """Render ``scene`` to a PIL RGB image of ``scene.width x scene.height`` pixels.

    A non-easy ``scene.difficulty`` adds the effects of :mod:`vpd.benchmarks.shapes_effects`
    (drawn from their own random stream, so easy images never change).
    """
    level = get_difficulty(scene.difficulty)
    fx = None if level.is_easy else _rng(scene.seed, scene.index, 4)
    rng = _rng(scene.seed, scene.index, 3)
    W, H = scene.width * SS, scene.height * SS
    canvas_arr = _background(rng, W, H, scene.noise)
    canvas = Image.fromarray(np.clip(canvas_arr, 0, 255).astype(np.uint8))
    if scene.noise:
        _strokes(rng, canvas, int(rng.integers(2, 7)))
    if fx is not None:
        effects.draw_clutter(fx, canvas, level, SS)
    # soft shadows below-right of each object
    shadow = Image.new("L", (W, H), 0)
    sd = ImageDraw.Draw(shadow)
    for obj in scene.objects:
        x0, y0, x1, y1 = (v * SS for v in obj.bbox)
        sd.ellipse((x0 + 4 * SS, y1 - 5 * SS, x1 + 6 * SS, y1 + 4 * SS), fill=90)
    shadow = shadow.filter(ImageFilter.GaussianBlur(4 * SS))
    arr = np.asarray(canvas, np.float32) * (1.0 - np.asarray(shadow, np.float32)[:, :, None] / 255.0 * 0.45)
    owner = np.full((H, W), -1, np.int16) if fx is not None else None
    boxes = []
    for i, obj in enumerate(scene.objects):
        x0, y0, x1, y1 = (v * SS for v in obj.bbox)
        w, h = x1 - x0, y1 - y0
        mask = np.asarray(_shape_mask(obj, w, h), np.float32)[:, :, None] / 255.0
        factor, white = _shading(obj, w, h, rng)
        base = np.asarray(RGB[obj.color], np.float32) if fx is None else effects.paint(obj.color, fx, level)
        colour = base * factor[:, :, None]
        colour = colour * (1 - white[:, :, None]) + 255.0 * white[:, :, None]
        region = arr[y0:y1, x0:x1]
        arr[y0:y1, x0:x1] = region * (1 - mask) + colour * mask
        if owner is not None:
            owner[y0:y1, x0:x1][mask[:, :, 0] > 0.5] = i
            boxes.append((x0, y0, x1, y1))
    if fx is not None:
        effects.cast_shadows(arr, owner, boxes, fx, level, SS)
        effects.light(arr, fx, level)
    img = Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8)).resize(
        (scene.width, scene.height), Image.BOX)
    if scene.noise:
        out = np.asarray(img, np.float32)
        out += rng.normal(0, 5.0, size=out.shape).astype(np.float32)
        for _ in range(int(rng.integers(3, 15))):  # tiny coloured speckles (1-2 px)
            x, y = int(rng.integers(0, scene.width - 2)), int(rng.integers(0, scene.height - 2))
            s = int(rng.integers(1, 3))
            out[y:y + s, x:x + s] = rng.uniform(0, 255, size=3)
        img = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
    if fx is not None:
        img = effects.degrade(img, fx, level)
    return img
