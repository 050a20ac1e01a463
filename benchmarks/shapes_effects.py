"""Image effects of the ``medium``/``hard`` shapes world (:mod:`vpd.benchmarks.shapes_difficulty`).

Called by :func:`vpd.benchmarks.shapes_render.render` only for a non-easy scene, with their own
random stream (``fx``), so the easy world's images stay byte-identical. Arrays are float32 RGB in
0..255, ``H x W x 3``; the supersampled canvas is ``SS`` times the image size.

* :func:`paint` — an object's RGB with its hue turned by up to ``hue_jitter_deg``;
* :func:`draw_clutter` — unknown shapes (rings, crosses, bars, stars, scribbles) in palette and
  off-palette colours; they are clutter, never objects;
* :func:`cast_shadows` — each object darkens what lies below-right of it *except itself*, so its
  shadow falls onto neighbouring objects;
* :func:`light` — a tinted light (per-channel gain) with a falloff towards one side;
* :func:`degrade` — Gaussian blur, extra pixel noise and JPEG re-encoding of the final image.
"""

from __future__ import annotations

import colorsys
import io

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from vpd.benchmarks.shapes import RGB
from vpd.benchmarks.shapes_difficulty import Difficulty

#: Clutter colours outside the named palette (pink, brown, olive, magenta, teal-grey, salmon).
OFF_PALETTE: tuple[tuple[int, int, int], ...] = (
    (240, 140, 185), (140, 85, 45), (150, 150, 50), (200, 60, 170), (80, 140, 140), (235, 120, 100))


def paint(color: str, fx: np.random.Generator, level: Difficulty) -> np.ndarray:
    """The RGB (float32, 0..255) of a ``color`` object, its hue turned by up to ``hue_jitter_deg``."""
    r, g, b = (c / 255.0 for c in RGB[color])
    h, s, v = colorsys.rgb_to_hsv(r, g, b)
    h = (h + float(fx.uniform(-level.hue_jitter_deg, level.hue_jitter_deg)) / 360.0) % 1.0
    return np.asarray(colorsys.hsv_to_rgb(h, s, v), np.float32) * 255.0


def draw_clutter(fx: np.random.Generator, canvas: Image.Image, level: Difficulty, ss: int) -> None:
    """Draw ``level.clutter`` unknown-shape distractors onto the supersampled ``canvas``."""
    lo, hi = level.clutter
    d = ImageDraw.Draw(canvas)
    W, H = canvas.size
    for _ in range(int(fx.integers(lo, hi + 1))):
        if fx.random() < 0.5:
            base = RGB[list(RGB)[int(fx.integers(len(RGB)))]]
        else:
            base = OFF_PALETTE[int(fx.integers(len(OFF_PALETTE)))]
        col = tuple(int(np.clip(c * fx.uniform(0.8, 1.05), 0, 255)) for c in base)
        cx, cy = int(fx.integers(0, W)), int(fx.integers(0, H))
        r = int(fx.integers(5, 15)) * ss
        kind = int(fx.integers(5))
        if kind == 0:  # ring
            d.ellipse((cx - r, cy - r, cx + r, cy + r), outline=col, width=int(fx.integers(2, 4)) * ss)
        elif kind == 1:  # cross
            wd = int(fx.integers(2, 5)) * ss
            d.line((cx - r, cy - r, cx + r, cy + r), fill=col, width=wd)
            d.line((cx - r, cy + r, cx + r, cy - r), fill=col, width=wd)
        elif kind == 2:  # bar
            ang = float(fx.uniform(0, np.pi))
            dx, dy = r * 1.5 * np.cos(ang), r * 1.5 * np.sin(ang)
            d.line((cx - dx, cy - dy, cx + dx, cy + dy), fill=col, width=int(fx.integers(3, 6)) * ss)
        elif kind == 3:  # five-pointed star
            pts = []
            for k in range(10):
                rad = r if k % 2 == 0 else r * 0.45
                a = np.pi / 2 + k * np.pi / 5
                pts.append((cx + rad * np.cos(a), cy - rad * np.sin(a)))
            d.polygon(pts, fill=col)
        else:  # scribble
            pts = [(cx, cy)]
            for _ in range(int(fx.integers(3, 6))):
                pts.append((pts[-1][0] + int(fx.integers(-12, 13)) * ss, pts[-1][1] + int(fx.integers(-12, 13)) * ss))
            d.line(pts, fill=col, width=int(fx.integers(2, 4)) * ss)


def cast_shadows(arr: np.ndarray, owner: np.ndarray, boxes: list[tuple[int, int, int, int]],
                 fx: np.random.Generator, level: Difficulty, ss: int) -> None:
    """Darken ``arr`` in place below-right of each object, on every pixel ``owner`` does not give
    to that object (``owner``: index of the topmost object per pixel, -1 for background)."""
    H, W = owner.shape
    dx_frac, dy_frac = float(fx.uniform(0.2, 0.45)), float(fx.uniform(0.15, 0.35))
    dark = np.zeros((H, W), np.float32)
    for i, (x0, y0, x1, y1) in enumerate(boxes):
        w, h = x1 - x0, y1 - y0
        dx, dy = int(w * dx_frac), int(h * dy_frac)
        pad = 3 * ss
        sx0, sy0 = max(0, x0 + dx - pad), max(0, y0 + dy - pad)
        sx1, sy1 = min(W, x1 + dx + pad), min(H, y1 + dy + pad)
        if sx1 <= sx0 or sy1 <= sy0:
            continue
        own = (owner[y0:y1, x0:x1] == i).astype(np.uint8) * 255
        local = Image.new("L", (sx1 - sx0, sy1 - sy0), 0)
        local.paste(Image.fromarray(own), (x0 + dx - sx0, y0 + dy - sy0))
        soft = np.asarray(local.filter(ImageFilter.GaussianBlur(1.5 * ss)), np.float32) / 255.0
        soft = soft * (owner[sy0:sy1, sx0:sx1] != i)
        dark[sy0:sy1, sx0:sx1] = np.maximum(dark[sy0:sy1, sx0:sx1], soft)
    arr *= (1.0 - level.cast_shadow * dark)[:, :, None]


def light(arr: np.ndarray, fx: np.random.Generator, level: Difficulty) -> None:
    """Tinted light and a linear falloff across the image, in place."""
    H, W = arr.shape[:2]
    gain = 1.0 + fx.uniform(-level.tint, level.tint, size=3).astype(np.float32)
    ang = float(fx.uniform(0, 2 * np.pi))
    yy, xx = np.mgrid[0:H, 0:W].astype(np.float32)
    t = (xx / W - 0.5) * np.cos(ang) + (yy / H - 0.5) * np.sin(ang) + 0.5  # 0..1 along the direction
    fall = 1.0 - level.falloff * float(fx.uniform(0.5, 1.0)) * np.clip(t, 0.0, 1.0)
    arr *= fall[:, :, None] * gain[None, None, :]


def degrade(img: Image.Image, fx: np.random.Generator, level: Difficulty) -> Image.Image:
    """Blur, extra pixel noise and JPEG re-encoding of the final RGB image."""
    radius = float(fx.uniform(*level.blur_px))
    if radius > 0:
        img = img.filter(ImageFilter.GaussianBlur(radius))
    if level.extra_noise > 0:
        out = np.asarray(img, np.float32) + fx.normal(0, level.extra_noise, size=(img.height, img.width, 3))
        img = Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))
    if level.jpeg_quality is not None:
        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=int(fx.integers(level.jpeg_quality[0], level.jpeg_quality[1] + 1)))
        img = Image.open(io.BytesIO(buf.getvalue())).convert("RGB")
    return img
