"""Question generation for the ``shapes`` world: one template list, unambiguous answers.

:data:`TEMPLATES` holds every question template (placeholders ``{color}``, ``{shape}``, ``{size}``,
``{color2}``, ``{shape2}``); :data:`TEMPLATE_QTYPE` maps each to its qtype. ``{shape}s`` is the
plural. The few-shot program library writes one program per template.

Answer rules (so that labels are trustworthy):

* counts are digit strings (``"3"``, ``"0"``); yes/no lowercase; colours/shapes/sizes lowercase words;
  multiple choice answers are the letter (``"A"``-``"D"``) with ``choices`` the option texts;
* an object named with ``the`` (``the {color2} {shape2}``) is unique in the scene by the named
  attributes; attribute questions only ask about such unique objects;
* spatial relations compare **box centres** (pixels, y down: "above" = smaller centre y); a question
  is only asked when every compared centre differs by at least :data:`MARGIN` pixels on that axis;
* the reference object is never counted in "how many … left of the …";
* "larger than" is only asked about objects of different sizes;
* existence questions are balanced yes/no; "no" questions ask about absent objects, preferring
  adversarial ones (the colour or the shape is present, the combination is not; POPE-like).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from vpd.benchmarks.shapes import COLORS, SHAPES, SIZES, Question, Scene, ShapeObject

MARGIN = 10  # px: minimum centre separation for spatial questions
LETTERS = "ABCD"

TEMPLATE_QTYPE: dict[str, str] = {
    # count_simple
    "How many {color} {shape}s are there?": "count_simple",
    "How many {shape}s are there?": "count_simple",
    "How many {color} objects are there?": "count_simple",
    "How many {size} {shape}s are there?": "count_simple",
    # count_complex (TallyQA-like)
    "How many {color} objects are left of the {color2} {shape2}?": "count_complex",
    "How many {color} objects are right of the {color2} {shape2}?": "count_complex",
    "How many {shape}s are above the {color2} {shape2}?": "count_complex",
    "How many {shape}s are below the {color2} {shape2}?": "count_complex",
    # exists (POPE-like)
    "Is there a {color} {shape}?": "exists",
    "Is there a {size} {shape}?": "exists",
    "Are there any {color} objects?": "exists",
    # attribute
    "What color is the {size} {shape}?": "attribute",
    "What shape is the {color} object?": "attribute",
    "What size is the {color} {shape}?": "attribute",
    # spatial
    "Is the {color} {shape} left of the {color2} {shape2}?": "spatial",
    "Is the {color} {shape} right of the {color2} {shape2}?": "spatial",
    "Is the {color} {shape} above the {color2} {shape2}?": "spatial",
    "Is the {color} {shape} below the {color2} {shape2}?": "spatial",
    # compare
    "Are there more {color} objects than {color2} objects?": "compare",
    "Are there more {shape}s than {shape2}s?": "compare",
    "Is the {color} {shape} larger than the {color2} {shape2}?": "compare",
    # choice (MMBench-like, 4 options)
    "What color is the {shape}?": "choice",
    "Which shape is the {color} object?": "choice",
    "How many {color} {shape}s are in the image?": "choice",
}

#: Every template, in a stable order.
TEMPLATES: list[str] = list(TEMPLATE_QTYPE)

Builder = Callable[[Scene, np.random.Generator], "Question | None"]


# -- helpers ------------------------------------------------------------------------------
def _yn(b: bool) -> str:
    return "yes" if b else "no"


def _pick(rng: np.random.Generator, items: list):
    return items[int(rng.integers(len(items)))] if items else None


def _match(objs: tuple[ShapeObject, ...], **attrs: str) -> list[ShapeObject]:
    return [o for o in objs if all(getattr(o, k) == v for k, v in attrs.items())]


def _unique(objs: tuple[ShapeObject, ...], *keys: str) -> list[ShapeObject]:
    """Objects that are the only one with their values of ``keys``."""
    return [o for o in objs if len(_match(objs, **{k: getattr(o, k) for k in keys})) == 1]


def _q(template: str, answer: str, rng_choices: tuple[str, ...] | None = None, **fill: str) -> Question:
    return Question(question=template.format(**fill), answer=answer, qtype=TEMPLATE_QTYPE[template],
                    template=template, choices=rng_choices, fillers=dict(fill))


def _axis(rel: str) -> tuple[int, int]:
    """(axis, sign): the object is ``rel`` of the reference iff sign * (c_ref - c_obj) >= MARGIN."""
    return {"left": (0, 1), "right": (0, -1), "above": (1, 1), "below": (1, -1)}[rel]


def _relation(obj: ShapeObject, ref: ShapeObject, rel: str) -> bool | None:
    """True/False, or None when the centres are too close on that axis to say."""
    axis, sign = _axis(rel)
    d = sign * (ref.center[axis] - obj.center[axis])
    if abs(d) < MARGIN:
        return None
    return d > 0


# -- builders -----------------------------------------------------------------------------
def _count_simple(template: str, keys: tuple[str, ...]) -> Builder:
    def build(scene: Scene, rng: np.random.Generator) -> Question | None:
        objs = scene.objects
        if not keys:
            return _q(template, str(len(objs)))
        if rng.random() < 0.15:  # sometimes ask about something absent: answer 0
            fill = {"color": _pick(rng, list(COLORS)), "shape": _pick(rng, list(SHAPES)),
                    "size": _pick(rng, list(SIZES))}
        else:
            o = _pick(rng, list(objs))
            fill = {"color": o.color, "shape": o.shape, "size": o.size}
        fill = {k: fill[k] for k in keys}
        return _q(template, str(len(_match(objs, **fill))), **fill)
    return build


def _count_complex(template: str, key: str, rel: str) -> Builder:
    def build(scene: Scene, rng: np.random.Generator) -> Question | None:
        objs = scene.objects
        refs = _unique(objs, "color", "shape")
        order = rng.permutation(len(refs))
        for i in order:
            ref = refs[int(i)]
            others = [o for o in objs if o is not ref]
            if not others:
                continue
            o = _pick(rng, others)
            value = getattr(o, key)
            cands = [c for c in others if getattr(c, key) == value]
            rels = [_relation(c, ref, rel) for c in cands]
            if any(r is None for r in rels):
                continue
            fill = {key: value, "color2": ref.color, "shape2": ref.shape}
            return _q(template, str(sum(bool(r) for r in rels)), **fill)
        return None
    return build


def _exists(template: str, keys: tuple[str, ...]) -> Builder:
    vocab = {"color": COLORS, "shape": SHAPES, "size": SIZES}

    def build(scene: Scene, rng: np.random.Generator) -> Question | None:
        objs = scene.objects
        combos = [dict(zip(keys, c)) for c in _product([vocab[k] for k in keys])]
        present = [c for c in combos if _match(objs, **c)]
        absent = [c for c in combos if not _match(objs, **c)]
        want_yes = bool(rng.random() < 0.5)
        if want_yes and present:
            return _q(template, "yes", **_pick(rng, present))
        if absent:
            # adversarial absent: shares one attribute value with a present object
            adv = [c for c in absent if len(keys) > 1 and any(
                _match(objs, **{k: v}) for k, v in c.items())]
            return _q(template, "no", **_pick(rng, adv or absent))
        return _q(template, "yes", **_pick(rng, present)) if present else None
    return build


def _product(lists: list[tuple[str, ...]]) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = [()]
    for values in lists:
        out = [o + (v,) for o in out for v in values]
    return out


def _attribute(template: str, keys: tuple[str, ...], asked: str) -> Builder:
    def build(scene: Scene, rng: np.random.Generator) -> Question | None:
        o = _pick(rng, _unique(scene.objects, *keys))
        if o is None:
            return None
        return _q(template, getattr(o, asked), **{k: getattr(o, k) for k in keys})
    return build


def _spatial(template: str, rel: str) -> Builder:
    def build(scene: Scene, rng: np.random.Generator) -> Question | None:
        uniq = _unique(scene.objects, "color", "shape")
        pairs = [(a, b) for a in uniq for b in uniq if a is not b and _relation(a, b, rel) is not None]
        if not pairs:
            return None
        want = bool(rng.random() < 0.5)
        good = [p for p in pairs if _relation(p[0], p[1], rel) == want] or pairs
        a, b = _pick(rng, good)
        return _q(template, _yn(bool(_relation(a, b, rel))), color=a.color, shape=a.shape,
                  color2=b.color, shape2=b.shape)
    return build


def _more(template: str, key: str) -> Builder:
    vocab = {"color": COLORS, "shape": SHAPES}[key]

    def build(scene: Scene, rng: np.random.Generator) -> Question | None:
        counts = {v: len(_match(scene.objects, **{key: v})) for v in vocab}
        present = [v for v in vocab if counts[v] > 0]
        pairs = [(a, b) for a in present for b in vocab if a != b]
        if not pairs:
            return None
        want = bool(rng.random() < 0.5)
        good = [p for p in pairs if (counts[p[0]] > counts[p[1]]) == want] or pairs
        a, b = _pick(rng, good)
        return _q(template, _yn(counts[a] > counts[b]), **{key: a, f"{key}2": b})
    return build


def _larger(template: str) -> Builder:
    def build(scene: Scene, rng: np.random.Generator) -> Question | None:
        uniq = _unique(scene.objects, "color", "shape")
        pairs = [(a, b) for a in uniq for b in uniq if a is not b and a.size != b.size]
        if not pairs:
            return None
        a, b = _pick(rng, pairs)
        return _q(template, _yn(a.size == "large"), color=a.color, shape=a.shape,
                  color2=b.color, shape2=b.shape)
    return build


def _options(rng: np.random.Generator, answer: str, pool: list[str], prefer: list[str]) -> tuple[tuple[str, ...], str]:
    """Four shuffled options containing ``answer``; distractors from ``prefer`` first. Returns (options, letter)."""
    prefer = [p for p in dict.fromkeys(prefer) if p != answer]
    rest = [p for p in pool if p != answer and p not in prefer]
    prefer = [prefer[int(i)] for i in rng.permutation(len(prefer))]
    rest = [rest[int(i)] for i in rng.permutation(len(rest))]
    opts = [answer] + (prefer + rest)[:3]
    opts = [opts[int(i)] for i in rng.permutation(len(opts))]
    return tuple(opts), LETTERS[opts.index(answer)]


def _choice_color(template: str) -> Builder:
    def build(scene: Scene, rng: np.random.Generator) -> Question | None:
        o = _pick(rng, _unique(scene.objects, "shape"))
        if o is None:
            return None
        opts, letter = _options(rng, o.color, list(COLORS), [x.color for x in scene.objects])
        return _q(template, letter, opts, shape=o.shape)
    return build


def _choice_shape(template: str) -> Builder:
    def build(scene: Scene, rng: np.random.Generator) -> Question | None:
        o = _pick(rng, _unique(scene.objects, "color"))
        if o is None:
            return None
        opts, letter = _options(rng, o.shape, list(SHAPES), [])
        return _q(template, letter, opts, color=o.color)
    return build


def _choice_count(template: str) -> Builder:
    def build(scene: Scene, rng: np.random.Generator) -> Question | None:
        o = _pick(rng, list(scene.objects))
        n = len(_match(scene.objects, color=o.color, shape=o.shape))
        pool = [str(i) for i in range(0, max(6, n + 3))]
        near = [str(i) for i in (n - 1, n + 1, n + 2) if i >= 0]
        opts, letter = _options(rng, str(n), pool, near)
        return _q(template, letter, opts, color=o.color, shape=o.shape)
    return build


_T = TEMPLATES
BUILDERS: dict[str, Builder] = {
    _T[0]: _count_simple(_T[0], ("color", "shape")),
    _T[1]: _count_simple(_T[1], ("shape",)),
    _T[2]: _count_simple(_T[2], ("color",)),
    _T[3]: _count_simple(_T[3], ("size", "shape")),
    _T[4]: _count_complex(_T[4], "color", "left"),
    _T[5]: _count_complex(_T[5], "color", "right"),
    _T[6]: _count_complex(_T[6], "shape", "above"),
    _T[7]: _count_complex(_T[7], "shape", "below"),
    _T[8]: _exists(_T[8], ("color", "shape")),
    _T[9]: _exists(_T[9], ("size", "shape")),
    _T[10]: _exists(_T[10], ("color",)),
    _T[11]: _attribute(_T[11], ("size", "shape"), "color"),
    _T[12]: _attribute(_T[12], ("color",), "shape"),
    _T[13]: _attribute(_T[13], ("color", "shape"), "size"),
    _T[14]: _spatial(_T[14], "left"),
    _T[15]: _spatial(_T[15], "right"),
    _T[16]: _spatial(_T[16], "above"),
    _T[17]: _spatial(_T[17], "below"),
    _T[18]: _more(_T[18], "color"),
    _T[19]: _more(_T[19], "shape"),
    _T[20]: _larger(_T[20]),
    _T[21]: _choice_color(_T[21]),
    _T[22]: _choice_shape(_T[22]),
    _T[23]: _choice_count(_T[23]),
}
assert set(BUILDERS) == set(TEMPLATES)


def questions_for_scene(scene: Scene, *, k: int, qtypes: tuple[str, ...], offset: int,
                        rng: np.random.Generator) -> list[Question]:
    """Up to ``k`` questions with distinct templates; qtypes rotate from ``offset``."""
    out: list[Question] = []
    used: set[str] = set()
    for step in range(len(qtypes) * 2):
        if len(out) >= k:
            break
        qtype = qtypes[(offset + step) % len(qtypes)]
        templates = [t for t in TEMPLATES if TEMPLATE_QTYPE[t] == qtype and t not in used]
        for i in rng.permutation(len(templates)):
            t = templates[int(i)]
            q = BUILDERS[t](scene, rng)
            if q is not None:
                out.append(q)
                used.add(t)
                break
    return out
