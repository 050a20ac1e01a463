"""How well a pretrained base *reads* an image: its ``caption en`` output on held-out scenes,
compared with the scene records.

The caption target format is :func:`vpd.distill.pretrain_tasks.caption`'s: ``"3 objects: a large
red cube, a small blue sphere and a large green cylinder."`` (objects left to right). Scores:

* ``count_exact`` — share of captions whose stated object count equals the scene's;
* ``object_precision`` / ``object_recall`` — multiset overlap of the (size, colour, shape) triples
  named by the caption with the scene's objects (order ignored);
* ``color_recall`` / ``shape_recall`` — the same per attribute alone (does it name the colours /
  shapes that are there);
* ``unparsed`` — captions that do not follow the format (scored as naming nothing);
* ``distinct_captions`` — how many different captions the scenes got (1 = the image is ignored).

The blind reference beside these is :func:`prior_caption_quality`: the single most common training
caption, scored the same way on the same scenes.

:func:`score_finds` scores the ``find <phrase>`` task the same way (the listing of
:func:`vpd.distill.pretrain_tasks.find`: ``"a large red cube and a small red sphere"`` or ``"none"``)
against the objects the phrase selects, beside its blind reference (always the majority presence).
"""

from __future__ import annotations

import re
from collections import Counter
from typing import Any, Sequence

_HEAD = re.compile(r"^\s*(\d+)\s+objects?\s*:\s*(.*?)\s*\.?\s*$", re.IGNORECASE | re.DOTALL)
_ITEM = re.compile(r"^(?:a|an)\s+(\S+)\s+(\S+)\s+(\S+)$", re.IGNORECASE)


def parse_caption(text: str) -> tuple[int, list[tuple[str, str, str]]] | None:
    """``(count, [(size, colour, shape), …])`` of a caption, or None when it is not in the format.

    Items that are not ``a SIZE COLOUR SHAPE`` are skipped (the count is kept as stated)."""
    m = _HEAD.match(text or "")
    if not m:
        return None
    return int(m.group(1)), parse_listing(m.group(2))


def parse_listing(text: str) -> list[tuple[str, str, str]]:
    """The ``(size, colour, shape)`` items of ``"a large red cube, … and a small red sphere"`` (``"none"``
    or text in no such form: ``[]``); items that are not ``a SIZE COLOUR SHAPE`` are skipped."""
    items = []
    for part in re.split(r",\s*|\s+and\s+", (text or "").strip().rstrip(".")):
        item = _ITEM.match(part.strip())
        if item:
            items.append(tuple(w.lower() for w in item.groups()))
    return items


def _overlap(pred: Sequence, truth: Sequence) -> int:
    return sum((Counter(pred) & Counter(truth)).values())


def score_captions(captions: Sequence[str], scenes_objects: Sequence[Sequence[dict]]) -> dict[str, Any]:
    """Score decoded captions against each scene's objects (dicts with ``size``, ``color``, ``shape``)."""
    if len(captions) != len(scenes_objects):
        raise ValueError(f"{len(captions)} captions for {len(scenes_objects)} scenes")
    exact = unparsed = tp = n_pred = n_true = 0
    attr_tp = {"color": 0, "shape": 0}
    for text, objects in zip(captions, scenes_objects):
        truth = [(o["size"], o["color"], o["shape"]) for o in objects]
        parsed = parse_caption(text)
        if parsed is None:
            unparsed += 1
            count, named = -1, []
        else:
            count, named = parsed
        exact += int(count == len(truth))
        tp += _overlap(named, truth)
        n_pred += len(named)
        n_true += len(truth)
        attr_tp["color"] += _overlap([n[1] for n in named], [t[1] for t in truth])
        attr_tp["shape"] += _overlap([n[2] for n in named], [t[2] for t in truth])
    n = max(len(captions), 1)
    return {"scenes": len(captions), "count_exact": exact / n, "object_precision": tp / max(n_pred, 1),
            "object_recall": tp / max(n_true, 1), "color_recall": attr_tp["color"] / max(n_true, 1),
            "shape_recall": attr_tp["shape"] / max(n_true, 1), "unparsed": unparsed,
            "distinct_captions": len(set(captions))}


def prior_caption_quality(train_captions: Sequence[str], scenes_objects: Sequence[Sequence[dict]]
                          ) -> dict[str, Any]:
    """The blind reference: the most common training caption given for every held-out scene."""
    if not train_captions:
        return {}
    prior = Counter(train_captions).most_common(1)[0][0]
    return {"caption": prior, **score_captions([prior] * len(scenes_objects), scenes_objects)}


def score_finds(outputs: Sequence[str], selected: Sequence[Sequence[dict]]) -> dict[str, Any]:
    """Score ``find <phrase>`` outputs against the objects each phrase selects (possibly none).

    ``presence_acc``: says "none" exactly when nothing is selected; ``count_exact``: names as many
    objects as are selected; ``exact``: names exactly the selected (size, colour, shape) multiset;
    ``object_recall`` / ``object_precision`` over the named items; ``presence_prior``: the accuracy
    of always giving the majority presence answer (the blind reference)."""
    if len(outputs) != len(selected):
        raise ValueError(f"{len(outputs)} outputs for {len(selected)} queries")
    presence = count = exact = tp = n_pred = n_true = 0
    for text, objects in zip(outputs, selected):
        truth = [(o["size"], o["color"], o["shape"]) for o in objects]
        named = parse_listing(text)
        says_none = (text or "").strip().lower().rstrip(".") == "none" or not named
        presence += int(says_none == (not truth))
        count += int(len(named) == len(truth))
        exact += int(Counter(named) == Counter(truth))
        tp, n_pred, n_true = tp + _overlap(named, truth), n_pred + len(named), n_true + len(truth)
    n = max(len(outputs), 1)
    present = sum(bool(s) for s in selected)
    return {"queries": len(outputs), "presence_acc": presence / n, "count_exact": count / n, "exact": exact / n,
            "object_recall": tp / max(n_true, 1), "object_precision": tp / max(n_pred, 1),
            "presence_prior": max(present, len(selected) - present) / n}
