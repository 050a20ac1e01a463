"""Accept/reject labels for LSKD triples in the ``shapes`` world, from the scene ground truth.

This is *labelling* (what a human annotator does elsewhere), never an input to generation. A
triple is labelled by

1. matching each referenced region ``[k]`` to a ground-truth object (best IoU >= ``min_iou``);
   a region that matches no object makes the triple wrong;
2. checking the answer for the question forms we can verify: the colour/shape/size of ``[k]``,
   ``Is [a] left of / right of / above / below [b]?``, ``Is [k] <value>?``,
   ``Are [a] and [b] the same <attribute>?``, ``How many ...`` (not region-specific: unlabelled).
   Other questions are left unlabelled (``None``), not guessed.

Scene records: ``{shape, color, size, bbox: [x0, y0, x1, y1]}`` (pixels, origin top-left, y down).
"""

from __future__ import annotations

import re
from typing import Any, Mapping, Sequence

from vpd.distill.lskd import Triple
from vpd.distill.verbalize import Verbalisation
from vpd.types import Box

VOCAB: dict[str, tuple[str, ...]] = {
    "color": ("red", "green", "blue", "yellow", "purple", "orange", "cyan"),
    "shape": ("cube", "sphere", "cylinder", "triangle"),
    "size": ("small", "large"),
}
SYNONYMS = {"square": "cube", "block": "cube", "circle": "sphere", "ball": "sphere", "big": "large",
            "little": "small", "tiny": "small", "colour": "color", "grey": "gray"}
_YES = {"yes", "true", "correct", "yeah", "yep"}
_NO = {"no", "false", "not", "nope"}


def _words(text: str) -> list[str]:
    return [SYNONYMS.get(w, w) for w in re.findall(r"[a-z]+", text.lower())]


def _yesno(answer: str) -> bool | None:
    ws = _words(answer)
    if not ws:
        return None
    if ws[0] in _YES:
        return True
    if ws[0] in _NO:
        return False
    return None


def match_regions(verb: Verbalisation, scene: Sequence[Mapping[str, Any]], *, min_iou: float = 0.5) -> dict[int, dict | None]:
    """Region id -> its ground-truth object (or None when no object overlaps enough)."""
    out: dict[int, dict | None] = {}
    gts = [(Box(x0=o["bbox"][0], y0=o["bbox"][1], x1=o["bbox"][2], y1=o["bbox"][3]), dict(o)) for o in scene]
    for r in verb.regions:
        best, best_iou = None, 0.0
        for box, obj in gts:
            iou = r.box.iou(box)
            if iou > best_iou:
                best, best_iou = obj, iou
        out[r.id] = best if best_iou >= min_iou else None
    return out


def _centre(obj: Mapping[str, Any]) -> tuple[float, float]:
    x0, y0, x1, y1 = obj["bbox"]
    return ((x0 + x1) / 2, (y0 + y1) / 2)


def _attr_values(answer: str, attr: str) -> set[str]:
    return {w for w in _words(answer) if w in VOCAB[attr]}


def label_triple(t: Triple, verb: Verbalisation, scene: Sequence[Mapping[str, Any]], *,
                 min_iou: float = 0.5) -> tuple[bool | None, str]:
    """``(label, why)``: True (correct), False (wrong) or None (cannot be checked)."""
    matched = match_regions(verb, scene, min_iou=min_iou)
    refs = t.refs
    for k in refs:
        if k not in matched:
            return False, f"[{k}] is not a region"
        if matched[k] is None:
            return False, f"[{k}] matches no object"
    q = " ".join(_words(t.question))
    qrefs = [int(m) for m in re.findall(r"\[(\d+)\]", t.question)]
    if not qrefs:
        return None, "question names no region"
    a = matched[qrefs[0]]
    assert a is not None
    yn = _yesno(t.answer)
    # What colour/shape/size is [k]?
    m = re.match(r"^(what|which) (color|shape|size)\b", q)
    if m:
        attr = m.group(2)
        vals = _attr_values(t.answer, attr)
        if not vals:
            return None, f"answer names no {attr}"
        return (vals == {a[attr]}), f"{attr} of [{qrefs[0]}] is {a[attr]}"
    # Is [a] left of / right of / above / below [b]?
    rel = re.search(r"\b(left|right|above|below|under|over)\b", q)
    if rel and len(qrefs) >= 2 and yn is not None and q.startswith(("is", "are")):
        b = matched[qrefs[1]]
        assert b is not None
        (ax, ay), (bx, by) = _centre(a), _centre(b)
        r = {"under": "below", "over": "above"}.get(rel.group(1), rel.group(1))
        truth = {"left": ax < bx, "right": ax > bx, "above": ay < by, "below": ay > by}[r]
        return (yn == truth), f"[{qrefs[0]}] {'is' if truth else 'is not'} {r} of [{qrefs[1]}]"
    # Are [a] and [b] the same colour/shape/size?
    same = re.search(r"\bsame (color|shape|size)\b", q)
    if same and len(qrefs) >= 2 and yn is not None:
        b = matched[qrefs[1]]
        assert b is not None
        attr = same.group(1)
        truth = a[attr] == b[attr]
        return (yn == truth), f"same {attr}: {truth}"
    # Is [k] red / a cube / large?
    if q.startswith(("is", "does")) and yn is not None and len(qrefs) == 1:
        for attr, values in VOCAB.items():
            named = [w for w in _words(t.question) if w in values]
            if named:
                truth = named[0] == a[attr]
                return (yn == truth), f"{attr} of [{qrefs[0]}] is {a[attr]}"
    return None, "question form not checkable"


def scenes_by_image(examples: Sequence[Any]) -> dict[str, list[dict]]:
    """image path -> scene records, from examples whose metadata has ``scene``."""
    out: dict[str, list[dict]] = {}
    for ex in examples:
        scene = (ex.metadata or {}).get("scene")
        if isinstance(scene, list) and ex.image not in out:
            out[ex.image] = scene
    return out
