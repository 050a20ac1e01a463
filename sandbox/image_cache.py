"""The pool's cache of decoded images by path: jobs that name the same image file decode it once.

Entries are keyed by (resolved path, mtime, size), so an edited file is read again; the least
recently used entry is dropped past ``size`` entries. Thread-safe (jobs resolve images from many
threads); decoding happens outside the lock.
"""

from __future__ import annotations

import collections
import threading
from pathlib import Path

from PIL import Image

from vpd.images import load_image


class ImageCache:
    """Decoded images by path (path, mtime, size) -> RGB PIL image; least recently used dropped."""

    def __init__(self, size: int = 64) -> None:
        self.size = size
        self.items: collections.OrderedDict[tuple[str, int, int], Image.Image] = collections.OrderedDict()
        self.lock = threading.Lock()

    def get(self, path: str | Path) -> Image.Image:
        p = Path(path)
        try:
            st = p.stat()
        except OSError:
            return load_image(p)  # raises ImageLoadError naming the path
        key = (str(p.resolve()), st.st_mtime_ns, st.st_size)
        with self.lock:
            if key in self.items:
                self.items.move_to_end(key)
                return self.items[key]
        img = load_image(p)
        with self.lock:
            self.items[key] = img
            while len(self.items) > self.size:
                self.items.popitem(last=False)
        return img

