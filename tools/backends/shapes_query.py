"""The ``shapes`` backend's language: object queries ("large blue object") and questions.

A query is a bag of words: at most one colour, one shape noun (or a generic noun), one size,
plus ignorable words (articles, "color", …). Plurals and synonyms are accepted
(square/block/box -> cube, circle/ball -> sphere, big -> large, little/tiny -> small). Any other
word raises :class:`~vpd.tools.errors.UnsupportedQuery` naming it: the backend never guesses.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from vpd.tools.errors import UnsupportedQuery

COLORS = ("red", "green", "blue", "yellow", "purple", "orange", "cyan")
SHAPES = ("cube", "sphere", "cylinder", "triangle")
SIZES = ("small", "large")

SHAPE_WORDS: dict[str, str] = {
    "cube": "cube", "square": "cube", "block": "cube", "box": "cube",
    "sphere": "sphere", "circle": "sphere", "ball": "sphere",
    "cylinder": "cylinder", "triangle": "triangle",
}
SIZE_WORDS: dict[str, str] = {"small": "small", "little": "small", "tiny": "small",
                              "large": "large", "big": "large"}
COLOR_WORDS: dict[str, str] = {c: c for c in COLORS}
GENERIC_NOUNS = frozenset({"object", "thing", "shape", "item"})
IGNORED = frozenset({"a", "an", "the", "any", "all", "some", "of", "color", "colour", "colored",
                     "coloured", "one", "ones", "that", "which", "this", "these", "those", "it",
                     "in", "image", "picture", "scene", "sized", "size", "is", "are"})


@dataclass(frozen=True, kw_only=True)
class ObjectQuery:
    """What to look for; ``None`` means any value."""

    color: str | None = None
    shape: str | None = None
    size: str | None = None

    def matches(self, color: str, shape: str, size: str) -> bool:
        return ((self.color is None or self.color == color) and (self.shape is None or self.shape == shape)
                and (self.size is None or self.size == size))

    @property
    def n_attributes(self) -> int:
        return sum(v is not None for v in (self.color, self.shape, self.size))


def _singular(word: str) -> str:
    if word in SHAPE_WORDS or word in GENERIC_NOUNS:
        return word
    if word.endswith("es") and word[:-2] in SHAPE_WORDS:  # boxes
        return word[:-2]
    if word.endswith("s") and (word[:-1] in SHAPE_WORDS or word[:-1] in GENERIC_NOUNS):
        return word[:-1]
    return word


def words(text: str) -> list[str]:
    return re.findall(r"[a-z]+", text.lower())


def parse_query(text: str, *, what: str = "query") -> ObjectQuery:
    """Parse an object query; raises :class:`UnsupportedQuery` naming an unknown or conflicting word."""
    found: dict[str, str] = {}
    toks = words(text)
    if not toks:
        raise UnsupportedQuery(f"shapes backend: empty {what} {text!r}")
    for raw in toks:
        w = _singular(raw)
        if w in IGNORED or w in GENERIC_NOUNS:
            continue
        for kind, table in (("color", COLOR_WORDS), ("shape", SHAPE_WORDS), ("size", SIZE_WORDS)):
            if w in table:
                value = table[w]
                if found.get(kind, value) != value:
                    raise UnsupportedQuery(
                        f"shapes backend: conflicting {kind}s {found[kind]!r} and {value!r} in {what} {text!r}")
                found[kind] = value
                break
        else:
            raise UnsupportedQuery(
                f"shapes backend: unknown word {raw!r} in {what} {text!r} (known: colours "
                f"{', '.join(COLORS)}; shapes {', '.join(SHAPE_WORDS)}; sizes {', '.join(SIZE_WORDS)}; "
                f"nouns {', '.join(sorted(GENERIC_NOUNS))})")
    return ObjectQuery(**found)
