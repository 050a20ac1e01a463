"""Per-sample region shuffling for LSKD rows at training time (LSKD, Park et al. 2023).

Every time an LSKD row is batched, its region ids get a fresh random relabelling, so a student
cannot memorise which id goes with which box: every ``[k]`` in the prefix (the question and any
region list) and the suffix (answer and rationale) is rewritten through one mapping, the regions
are drawn again on the clean image with their new ``[k]`` tags (:func:`~vpd.distill.regions_draw.draw_regions`,
colour order by new id), and the row is re-tokenised. The mapping is a random permutation
``pi`` of ``0 .. m-1`` (``m`` = one more than the largest id cited, at least the number of regions)
restricted to the row's ids; it is a pure function of ``(seed, step, row)``, so a resumed run
sees the same data.

Rows are LSKD rows when their mixture ``task`` is ``"lskd"``; they need the ``regions`` block
``{"image": clean image path, "references": [{"name": "k", "boxes": [[x0, y0, x1, y1]]}]}``
that ``vpd mix`` writes (boxes in pixels of the clean image, origin top-left). Rows without it
(mixtures made before this existed) or whose clean image cannot be read are left as they are and
counted in :attr:`RegionShuffler.skipped`.

Cost: a clean image is decoded once and kept (an LRU of ``cache_images`` images, capped at
``max_side`` pixels); per batched LSKD row it is one PIL drawing, one resize and one tokenisation.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

import numpy as np
from PIL import Image

LSKD_TASK = "lskd"
_REF = re.compile(r"\[(\d{1,3})\]")


def text_ids(*texts: str) -> list[int]:
    """Ids cited as ``[k]`` in ``texts``, first-mention order, unique."""
    out: list[int] = []
    for t in texts:
        for m in _REF.finditer(t or ""):
            if int(m.group(1)) not in out:
                out.append(int(m.group(1)))
    return out


def fresh_mapping(ids: Sequence[int], rng: np.random.Generator) -> dict[int, int]:
    """``old id -> new id``: a random permutation of ``0 .. m-1`` restricted to ``ids``
    (``m = max(len(ids), max(ids) + 1)``), so new ids are distinct and stay in the same range."""
    ids = sorted({int(k) for k in ids})
    if not ids:
        return {}
    m = max(len(ids), ids[-1] + 1)
    perm = rng.permutation(m)
    return {k: int(perm[k]) for k in ids}


def rewrite_ids(text: str, mapping: Mapping[int, int]) -> str:
    """Every ``[k]`` in ``text`` replaced by ``[mapping[k]]`` (ids not in ``mapping`` unchanged), in one pass."""
    return _REF.sub(lambda m: f"[{mapping.get(int(m.group(1)), int(m.group(1)))}]", text)


def relabel_references(references: Sequence[Mapping[str, Any]], mapping: Mapping[int, int]) -> list[dict[str, Any]]:
    """LSKD references with names mapped, sorted by new id (the drawing colour order)."""
    out = [{**r, "name": str(mapping.get(int(r["name"]), int(r["name"])))} for r in references]
    return sorted(out, key=lambda r: int(r["name"]))


@dataclass(frozen=True, kw_only=True)
class RegionRow:
    """What re-drawing and re-tokenising one LSKD row needs."""

    prefix: str
    suffix: str
    image: str  # the clean image (no regions drawn)
    references: tuple[dict[str, Any], ...]
    ids: tuple[int, ...]  # every id in the text and the references


class RegionShuffler:
    """Rewrites the LSKD rows of a host batch (see the module docstring); other rows are untouched."""

    def __init__(self, rows: Mapping[int, RegionRow], tok: Any, *, image_size: int, max_prefix: int,
                 max_suffix: int, seed: int = 0, skipped: int = 0, cache_images: int = 512,
                 max_side: int = 512) -> None:
        self.rows, self.tok = dict(rows), tok
        self.image_size, self.max_prefix, self.max_suffix, self.seed = image_size, max_prefix, max_suffix, seed
        self.skipped = skipped
        self.cache_images, self.max_side = cache_images, max_side
        self._cache: OrderedDict[str, tuple[Image.Image, float]] = OrderedDict()  # path -> (image, box scale)

    @classmethod
    def from_records(cls, records: Sequence[Mapping[str, Any]], row_ids: Sequence[str], row_tasks: Sequence[str],
                     tok: Any, **kw: Any) -> "RegionShuffler":
        """Rows of a tokenised mixture (``row_ids``/``row_tasks`` per row, e.g. ``MixtureData.ids``/
        ``.tasks``) matched to their mixture ``records`` by id."""
        by_id: dict[str, list[Mapping[str, Any]]] = {}
        for r in records:
            if r.get("task") == LSKD_TASK:
                by_id.setdefault(str(r["id"]), []).append(r)
        rows: dict[int, RegionRow] = {}
        skipped = 0
        for i, (rid, task) in enumerate(zip(row_ids, row_tasks)):
            if task != LSKD_TASK:
                continue
            queue = by_id.get(str(rid)) or []
            rec = queue.pop(0) if queue else None
            reg = rec.get("regions") if rec else None
            if not isinstance(reg, Mapping) or not reg.get("image") or not isinstance(reg.get("references"), list):
                skipped += 1
                continue
            refs = tuple(dict(r) for r in reg["references"])
            ids = set(text_ids(rec["prefix"], rec["suffix"])) | {int(r["name"]) for r in refs}
            rows[i] = RegionRow(prefix=str(rec["prefix"]), suffix=str(rec["suffix"]), image=str(reg["image"]),
                                references=refs, ids=tuple(sorted(ids)))
        return cls(rows, tok, skipped=skipped, **kw)

    def __len__(self) -> int:
        return len(self.rows)

    def _clean(self, path: str) -> tuple[Image.Image, float] | None:
        """The clean image (at most ``max_side`` pixels a side) and the factor its boxes scale by."""
        hit = self._cache.get(path)
        if hit is not None:
            self._cache.move_to_end(path)
            return hit
        from vpd.distill.vlm_preprocess import to_rgb
        from vpd.images import load_image

        try:
            img = to_rgb(load_image(path))
        except (OSError, ValueError):
            return None
        scale = min(1.0, self.max_side / max(img.size))
        if scale < 1:
            img = img.resize((max(1, round(img.width * scale)), max(1, round(img.height * scale))),
                             Image.Resampling.BILINEAR)
        self._cache[path] = (img, scale)
        if len(self._cache) > self.cache_images:
            self._cache.popitem(last=False)
        return img, scale

    def shuffled(self, row: int, step: int) -> tuple[str, str, np.ndarray | None, dict[int, int]]:
        """``(prefix, suffix, pixels uint8 [S, S, 3] or None, mapping)`` of ``row`` at ``step``."""
        from vpd.distill.regions_draw import draw_regions
        from vpd.distill.vlm_preprocess import resize_uint8

        r = self.rows[row]
        mapping = fresh_mapping(r.ids, np.random.default_rng([self.seed, step, row]))
        prefix, suffix = rewrite_ids(r.prefix, mapping), rewrite_ids(r.suffix, mapping)
        hit = self._clean(r.image)
        if hit is None:
            return prefix, suffix, None, mapping
        clean, k = hit
        refs = [{**ref, "boxes": [[float(v) * k for v in list(b)[:4]] for b in ref.get("boxes", [])]}
                for ref in relabel_references(r.references, mapping)]
        return prefix, suffix, resize_uint8(draw_regions(clean, refs), self.image_size), mapping

    def apply(self, batch: dict[str, np.ndarray], rows: np.ndarray, step: int) -> dict[str, np.ndarray]:
        """``batch`` (from ``MixtureData.batch(rows)``) with its LSKD rows shuffled for ``step``, in place."""
        from vpd.distill.vlm_preprocess import encode_example, normalize

        for j, row in enumerate(np.asarray(rows).tolist()):
            if row not in self.rows:
                continue
            prefix, suffix, pixels, _ = self.shuffled(row, step)
            if pixels is None:  # unreadable clean image: text and drawing must agree, so keep the row as is
                continue
            enc = encode_example(self.tok, prefix, suffix, self.max_prefix, self.max_suffix)
            batch["tokens"][j], batch["valid"][j], batch["suffix"][j] = enc.tokens, enc.valid, enc.suffix
            batch["pixels"][j] = normalize(pixels)
        return batch

