"""Image loading with clear errors. Images are RGB ``PIL.Image`` objects in the host only."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path

from PIL import Image


class ImageLoadError(ValueError):
    """An image file is missing, unreadable or corrupt; the message names the path."""


def load_image(source: str | Path | bytes | Image.Image) -> Image.Image:
    """Load ``source`` (path, encoded bytes or a PIL image) as an RGB image.

    Raises :class:`ImageLoadError` naming the path for missing or corrupt files.
    """
    if isinstance(source, Image.Image):
        return source if source.mode == "RGB" else source.convert("RGB")
    if isinstance(source, (bytes, bytearray)):
        try:
            img = Image.open(io.BytesIO(source))
            img.load()
        except Exception as exc:  # any decoder failure (plugins patched into PIL raise their own types)
            raise ImageLoadError(f"cannot decode image bytes: {type(exc).__name__}: {exc}") from exc
        return img.convert("RGB")
    path = Path(source)
    if not path.exists():
        raise ImageLoadError(f"image file not found: {path}")
    if not path.is_file():
        raise ImageLoadError(f"image path is not a file: {path}")
    try:
        with Image.open(path) as img:
            img.load()
            return img.convert("RGB")
    except Exception as exc:  # any decoder failure (e.g. ultralytics patches PIL.Image.open)
        raise ImageLoadError(f"corrupt or unreadable image {path}: {type(exc).__name__}: {exc}") from exc


def image_digest(image: Image.Image) -> str:
    """A content hash of the decoded pixels (sha1 of mode, size and bytes), hex, 16 chars."""
    h = hashlib.sha1()
    h.update(f"{image.mode}{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()[:16]
