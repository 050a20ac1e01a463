"""The ``shapes`` backend: every tool answered from the pixels of the synthetic shapes world.

Detection is colour segmentation + contour shape classification
(:mod:`vpd.tools.backends.shapes_detect`); queries and questions are parsed by
:mod:`vpd.tools.backends.shapes_query`. It never reads a scene record, and it never guesses: an
unknown word raises :class:`~vpd.tools.errors.UnsupportedQuery` naming it.

Tools (image = the patch the host cropped; boxes in its pixels, origin top-left):

* ``detect(image, query)`` -> boxes of matching objects, left to right; label ``"size colour shape"``.
* ``count(image, query)`` -> number of such boxes.
* ``vqa(image, question)`` -> answers "What color/shape/size is …?", "What is the color of …?",
  "How many … (are there)?", "Is there …?" / "Are there …?", "Is the X Y?" (Y colour/shape/size
  words, or "Y or Z"), "What is this?". The subject is the **largest** object in the patch matching
  the named attributes ("this"/"it" = the largest object); when nothing matches, attribute questions
  answer ``"none"``. Any other question raises UnsupportedQuery.
* ``verify_property(image, name, prop)`` -> whether **any** object matching ``name`` has ``prop``.
* ``best_text_match(image, options)`` -> the option describing the largest object (most specific
  wins), else one naming another object in the patch, else "nothing"/"none"/"background" if offered,
  else the best partial fit; ties go to the first option.
* ``caption(image)`` -> "3 objects: a large red cube, a small blue sphere and 2 small green
  cylinders." (left to right).
* ``depth(image)`` -> depth from apparent size: ``FOCAL_PX / longer side`` of the largest object in
  the patch (all objects share a few true sizes, so a smaller-looking object is farther; a
  50-px object is at depth 1.0, a 25-px one at 2.0); ``BACKGROUND_DEPTH`` (10.0) for a patch with
  no object.
"""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from typing import Any, ClassVar, Mapping

from PIL import Image

from vpd.tools.backend import Backend, register_backend
from vpd.tools.backends.shapes_detect import DetectedObject, detect_objects
from vpd.tools.backends.shapes_query import ObjectQuery, parse_query, words
from vpd.tools.errors import UnsupportedQuery
from vpd.types import Box
from vpd.wording import join_and

FOCAL_PX = 50.0
BACKGROUND_DEPTH = 10.0
NOTHING_WORDS = frozenset({"nothing", "none", "background", "empty"})
_PRONOUNS = frozenset({"this", "it", "that", "these", "those", "they"})
_NOUNS_RE = re.compile(r"^(cube|square|block|box|sphere|circle|ball|cylinder|triangle|object|thing|shape|item)(e?s)?$")


@register_backend("shapes")
class ShapesBackend(Backend):
    """Pixel-based tools for the synthetic shapes world (OpenCV + numpy; no model weights)."""

    version: ClassVar[str] = "2"  # 2: score = shape fit x colour purity x size
    provides: ClassVar[frozenset[str]] = frozenset(
        {"detect", "count", "vqa", "caption", "verify_property", "best_text_match", "depth"})
    #: One colour segmentation per image answers every tool (``depth`` of a sub-box excepted).
    analysed: ClassVar[frozenset[str]] = provides
    memory_class: ClassVar[str] = "cpu-small"
    needs: ClassVar[str] = "opencv-python-headless, numpy (no weights)"
    #: The only option: how many images' segmentations to memoise (never changes an answer).
    settings: ClassVar[Mapping[str, Any]] = {"cache_size": 64}
    runtime_settings: ClassVar[frozenset[str]] = frozenset({"cache_size"})

    def __init__(self, cache_size: int = 64, **options: Any) -> None:
        super().__init__(cache_size=cache_size, **options)
        self._cache: OrderedDict[str, list[DetectedObject]] = OrderedDict()
        self._cache_size = int(cache_size)

    # -- cache keys -----------------------------------------------------------------------
    def canonical_args(self, tool: str, args: Mapping[str, Any]) -> dict[str, Any]:
        """Queries as this backend parses them, so "a red circles" and "Red sphere" share a key.

        ``detect``/``count``/``verify_property`` answers depend only on the parsed
        :class:`ObjectQuery` (box labels come from the pixels, never from the query); ``vqa`` only
        on its lower-cased words. ``best_text_match`` returns one of the options verbatim, so its
        options stay exact. A query the parser rejects keeps its exact text (the call fails anyway).
        """
        try:
            if tool in ("detect", "count") and set(args) == {"query"}:
                return {"query": _canonical_query(args["query"])}
            if tool == "verify_property" and set(args) == {"name", "prop"}:
                return {"name": _canonical_query(args["name"]), "prop": _canonical_query(args["prop"])}
            if tool == "vqa" and set(args) == {"question"} and isinstance(args["question"], str):
                return {"question": " ".join(words(args["question"]))}
        except (UnsupportedQuery, TypeError):  # a query the parser rejects stays exact
            return super().canonical_args(tool, args)
        return super().canonical_args(tool, args)

    # -- perception ---------------------------------------------------------------------
    def objects(self, image: Image.Image) -> list[DetectedObject]:
        """All objects in ``image`` (memoised per pixel content, LRU of ``cache_size`` images)."""
        if self._cache_size <= 0:
            return detect_objects(image)
        key = hashlib.blake2b(image.tobytes(), digest_size=16).hexdigest() + f"{image.size}{image.mode}"
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return hit
        objs = detect_objects(image)
        self._cache[key] = objs
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return objs

    # -- image analysis: every tool but depth-of-a-box is a function of the object list ------
    def analyse(self, image: Image.Image) -> list[dict[str, Any]]:
        """Every object in ``image`` as JSON (:func:`objects_to_json`): the one pixel pass the
        other tools filter."""
        return objects_to_json(self.objects(image))

    @classmethod
    def uses_analysis(cls, tool: str, args: Mapping[str, Any]) -> bool:
        """All tools, except ``depth`` of a sub-box (that re-segments the crop)."""
        return tool in cls.analysed and not (tool == "depth" and args.get("box") is not None)

    @classmethod
    def answer_from(cls, context: Mapping[str, Any], tool: str, analysis: Any, **args: Any) -> Any:
        """``tool`` over the stored object list (no context needed)."""
        if tool not in _FROM_OBJECTS:
            raise UnsupportedQuery(f"shapes backend: tool {tool!r} is not answered from an analysis")
        return _FROM_OBJECTS[tool](objects_from_json(analysis), **args)

    # -- tools ----------------------------------------------------------------------------
    def detect(self, image: Image.Image, query: str) -> list[Box]:
        return detect_in(self.objects(image), query)

    def count(self, image: Image.Image, query: str) -> int:
        return count_in(self.objects(image), query)

    def verify_property(self, image: Image.Image, name: str, prop: str) -> bool:
        return verify_property_in(self.objects(image), name, prop)

    def best_text_match(self, image: Image.Image, options: list[str]) -> str:
        return best_text_match_in(self.objects(image), options)

    def caption(self, image: Image.Image) -> str:
        return caption_of(self.objects(image))

    def depth(self, image: Image.Image, box: list[int] | None = None) -> float:
        if box is not None:
            x0, y0, x1, y1 = (int(v) for v in box)
            if (x0, y0, x1, y1) != (0, 0, image.width, image.height):
                image = image.crop((x0, y0, x1, y1))
        return depth_of(self.objects(image))

    def vqa(self, image: Image.Image, question: str) -> str:
        return vqa_on(self.objects(image), question)


# -- the tools as functions of an image's object list -------------------------------------------
def objects_to_json(objs: list[DetectedObject]) -> list[dict[str, Any]]:
    """``[{"color", "shape", "size", "box": [x0, y0, x1, y1], "area", "score"}, …]`` (pixels)."""
    return [{"color": o.color, "shape": o.shape, "size": o.size, "box": list(o.box), "area": o.area,
             "score": o.score} for o in objs]


def objects_from_json(rows: Any) -> list[DetectedObject]:
    """The inverse of :func:`objects_to_json`."""
    return [DetectedObject(color=str(r["color"]), shape=str(r["shape"]), size=str(r["size"]),
                           box=tuple(int(v) for v in r["box"]), area=int(r["area"]), score=float(r["score"]))
            for r in rows]


def _matching(objs: list[DetectedObject], q: ObjectQuery) -> list[DetectedObject]:
    return [o for o in objs if q.matches(o.color, o.shape, o.size)]


def _subject(objs: list[DetectedObject], text: str) -> DetectedObject | None:
    found = _matching(objs, parse_query(text, what="subject"))
    return max(found, key=lambda o: o.area) if found else None


def detect_in(objs: list[DetectedObject], query: str) -> list[Box]:
    q = parse_query(query)
    return [Box(x0=o.box[0], y0=o.box[1], x1=o.box[2], y1=o.box[3], score=o.score, label=o.description)
            for o in _matching(objs, q)]


def count_in(objs: list[DetectedObject], query: str) -> int:
    return len(_matching(objs, parse_query(query)))


def verify_property_in(objs: list[DetectedObject], name: str, prop: str) -> bool:
    subject = parse_query(name, what="object name")
    p = parse_query(prop, what="property")
    if p.n_attributes == 0:
        raise UnsupportedQuery(f"shapes backend: property {prop!r} names no colour, shape or size")
    return any(p.matches(o.color, o.shape, o.size) for o in _matching(objs, subject))


def best_text_match_in(objs: list[DetectedObject], options: list[str]) -> str:
    if not options:
        raise UnsupportedQuery("shapes backend: best_text_match needs at least one option")
    by_area = sorted(objs, key=lambda o: -o.area)
    best, best_score = str(options[0]), -1.0
    for opt in options:
        score = _option_score(by_area, str(opt))
        if score > best_score:
            best, best_score = str(opt), score
    return best


def _option_score(objs: list[DetectedObject], option: str) -> float:
    """1 (+ specificity) if the option fits the largest object, 0.5 if it fits another one,
    up to 0.2 for a partial fit of the largest; "nothing" scores 1 on an empty patch, else 0.25."""
    toks = set(words(option))
    if toks & NOTHING_WORDS:
        return 1.0 if not objs else 0.25
    q = parse_query(option, what="option")
    if not objs:
        return 0.0
    bonus = 0.01 * q.n_attributes
    main = objs[0]
    if q.matches(main.color, main.shape, main.size):
        return 1.0 + bonus
    if any(q.matches(o.color, o.shape, o.size) for o in objs):
        return 0.5 + bonus
    hits = sum(v is not None and v == getattr(main, k)
               for k, v in (("color", q.color), ("shape", q.shape), ("size", q.size)))
    return 0.2 * hits / max(1, q.n_attributes)


def caption_of(objs: list[DetectedObject]) -> str:
    if not objs:
        return "An empty scene with no objects."
    groups: dict[str, int] = {}
    for o in objs:
        groups[o.description] = groups.get(o.description, 0) + 1
    parts = [f"a {d}" if n == 1 else f"{n} {d}s" for d, n in groups.items()]
    noun = "object" if len(objs) == 1 else "objects"
    return f"{len(objs)} {noun}: {join_and(parts)}."


def depth_of(objs: list[DetectedObject], box: list[int] | None = None) -> float:
    """Depth of the largest object (``box`` must be None: a sub-box needs its own segmentation)."""
    if box is not None:
        raise UnsupportedQuery("shapes backend: depth of a box is computed from the crop, not an analysis")
    if not objs:
        return BACKGROUND_DEPTH
    main = max(objs, key=lambda o: o.area)
    return round(FOCAL_PX / max(1, main.longer_side), 4)


def vqa_on(objs: list[DetectedObject], question: str) -> str:
    q = " ".join(words(question))
    if not q:
        raise UnsupportedQuery("shapes backend: empty question")
    for pattern, kind in _QUESTION_PATTERNS:
        m = pattern.match(q)
        if m:
            return _ANSWERS[kind](objs, *m.groups())
    raise UnsupportedQuery(f"shapes backend cannot answer {question!r} (it answers colour, shape, size, "
                           "'how many …', 'is there …' and 'is the X Y' questions)")


# -- question kinds -----------------------------------------------------------------------------
def _answer_attribute(objs: list[DetectedObject], attr: str, subject: str) -> str:
    attr = "color" if attr == "colour" else attr
    o = _subject(objs, subject)
    return getattr(o, attr) if o is not None else "none"


def _answer_count(objs: list[DetectedObject], subject: str) -> str:
    return str(len(_matching(objs, parse_query(subject))))


def _answer_exists(objs: list[DetectedObject], subject: str) -> str:
    return "yes" if _matching(objs, parse_query(subject)) else "no"


def _answer_describe(objs: list[DetectedObject], *_: str) -> str:
    if not objs:
        return "nothing"
    o = max(objs, key=lambda x: x.area)
    return f"{o.size} {o.color} {o.shape}"


def _answer_either(objs: list[DetectedObject], rest: str, opt_a: str, opt_b: str) -> str:
    subject, _ = _split_subject(rest.split())
    o = _subject(objs, " ".join(subject) or "object")
    for opt in (opt_a, opt_b):
        p = parse_query(opt, what="option")
        if o is not None and p.n_attributes and p.matches(o.color, o.shape, o.size):
            return opt
    return "neither"


def _answer_verify(objs: list[DetectedObject], rest: str) -> str:
    subject, prop = _split_subject(rest.split())
    p = parse_query(" ".join(prop) or "?", what="property")
    if p.n_attributes == 0:
        raise UnsupportedQuery(f"shapes backend: no property to check in 'is {rest}'")
    found = _matching(objs, parse_query(" ".join(subject) or "object", what="subject"))
    return "yes" if any(p.matches(o.color, o.shape, o.size) for o in found) else "no"


_ANSWERS = {"attribute": _answer_attribute, "attribute_of": _answer_attribute, "count": _answer_count,
            "exists": _answer_exists, "describe": _answer_describe, "either": _answer_either,
            "verify": _answer_verify}

_FROM_OBJECTS = {"detect": detect_in, "count": count_in, "verify_property": verify_property_in,
                 "best_text_match": best_text_match_in, "caption": caption_of, "depth": depth_of, "vqa": vqa_on}


def _canonical_query(text: Any) -> str:
    """``"color=red shape=sphere size=*"`` for any text the parser reads as that query."""
    if not isinstance(text, str):
        raise TypeError("query must be a string")
    q = parse_query(text)
    return " ".join(f"{k}={getattr(q, k) or '*'}" for k in ("color", "shape", "size"))


def _split_subject(toks: list[str]) -> tuple[list[str], list[str]]:
    """Split "the red cube large" into subject ["the", "red", "cube"] and property ["large"]."""
    if toks and toks[0] in _PRONOUNS:
        return [], toks[1:]
    for i, t in enumerate(toks):
        if _NOUNS_RE.match(t):
            return toks[: i + 1], toks[i + 1:]
    return [], toks


_QUESTION_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"^(?:what|which) (color|colour|shape|size) (?:is|are) (.+)$"), "attribute"),
    (re.compile(r"^what is the (color|colour|shape|size) of (.+)$"), "attribute_of"),
    (re.compile(r"^how many (.+?)(?: are there| are in the image| are in the picture| are visible"
                r"| can you see| do you see| are| is there| there are)?$"), "count"),
    (re.compile(r"^(?:is|are) there (.+)$"), "exists"),
    (re.compile(r"^what (?:is|are) (this|that|it|these|those|this object|the object|in the image|there)$"),
     "describe"),
    (re.compile(r"^(?:is|are) (.+?) (\w+) or (\w+)$"), "either"),
    (re.compile(r"^(?:is|are) (.+)$"), "verify"),
]
