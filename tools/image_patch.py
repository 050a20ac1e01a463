"""The program-facing API: ViperGPT/VPD-compatible ``ImagePatch`` and free functions.

Pure Python (stdlib only), so it loads in a sandbox worker in milliseconds. A patch never holds
pixels: it holds an image id, the image size and its box; every model call goes through a
:class:`ToolClient` to the host, which owns the pixels, runs the backend and records the trace.

Coordinates. Attributes follow **ViperGPT's convention**: ``left``/``right`` are x in pixels from
the left edge; ``lower``/``upper`` are y in pixels measured **upwards from the bottom** of the full
image, so ``lower < upper`` and "above" means a larger ``vertical_center``. ``crop(left, lower,
right, upper)`` takes coordinates relative to this patch in the same convention. The mapping to
a pixel :class:`~vpd.types.Box` (y down) of an image of height ``H`` is::

    x0 = left, x1 = right, y0 = H - upper, y1 = H - lower
"""

from __future__ import annotations

import math
import re
from typing import Any, List, Protocol, Sequence, Union  # noqa: F401  (List for program annotations)


class ToolClient(Protocol):
    """Sends one tool request to the host and returns its JSON result (raises on tool errors)."""

    def call(self, tool: str, image_id: str | None, box: tuple[int, int, int, int] | None,
             args: dict[str, Any]) -> Any: ...


class ImageHandle:
    """What ``execute_command(image)`` receives: an opaque image reference (id and size in pixels)."""

    __slots__ = ("_id", "_width", "_height", "_client")

    def __init__(self, image_id: str, width: int, height: int, client: ToolClient) -> None:
        self._id, self._width, self._height, self._client = image_id, int(width), int(height), client

    @property
    def size(self) -> tuple[int, int]:
        return (self._width, self._height)

    def __repr__(self) -> str:
        return f"<image {self._width}x{self._height}>"


class EmptyPatchError(ValueError):
    """A tool was called on a patch with no area (zero width or height): there are no pixels to
    look at, so there is no honest answer to invent (no detections, False, depth 0 …)."""


def _current_client() -> ToolClient:
    if _CLIENT[0] is None:
        raise RuntimeError("no tool client bound (run programs through vpd.sandbox or vpd.tools.host)")
    return _CLIENT[0]


#: The client used by free functions such as ``llm_query`` (bound per execution by the runner).
_CLIENT: list[ToolClient | None] = [None]


def bind_client(client: ToolClient | None) -> None:
    _CLIENT[0] = client


class ImagePatch:
    """A crop of an image, with methods that call vision tools on it.

    Attributes (ViperGPT convention, y measured upwards from the image bottom)
    ----------
    left, lower, right, upper : int
        Borders in pixels of the full image. ``lower < upper``.
    width, height : int
        Size of the patch in pixels.
    horizontal_center, vertical_center : float
        Centre of the patch; a larger ``vertical_center`` is higher in the image.
    """

    def __init__(self, image: Any, left: int | None = None, lower: int | None = None,
                 right: int | None = None, upper: int | None = None, parent_left: int = 0,
                 parent_lower: int = 0, queues: Any = None, parent_img_patch: Any = None) -> None:
        """Make a patch of ``image`` (an image handle or another patch).

        With no coordinates the patch is the whole image. Otherwise ``left, lower, right, upper``
        are relative to ``parent_left, parent_lower`` (ViperGPT's convention).
        """
        if isinstance(image, ImagePatch):
            handle = image._handle
            parent_left, parent_lower = (parent_left or image.left), (parent_lower or image.lower)
            if left is None:
                left, lower, right, upper = 0, 0, image.width, image.height
        elif isinstance(image, ImageHandle):
            handle = image
        else:
            raise TypeError("ImagePatch needs the image given to execute_command, or another ImagePatch")
        self._handle = handle
        W, H = handle._width, handle._height
        if left is None and lower is None and right is None and upper is None:
            l, lo, r, u = 0, 0, W, H
        else:
            l = int(left if left is not None else 0) + int(parent_left)
            lo = int(lower if lower is not None else 0) + int(parent_lower)
            r = int(right if right is not None else W) + int(parent_left)
            u = int(upper if upper is not None else H) + int(parent_lower)
        # a patch never leaves its parent (ViperGPT slices the parent's pixels), nor the image
        parent = parent_img_patch if isinstance(parent_img_patch, ImagePatch) else (
            image if isinstance(image, ImagePatch) else None)
        x0, x1, y0, y1 = (0, W, 0, H) if parent is None else (parent.left, parent.right, parent.lower, parent.upper)
        l, r = sorted((max(x0, min(x1, l)), max(x0, min(x1, r))))
        lo, u = sorted((max(y0, min(y1, lo)), max(y0, min(y1, u))))
        self.left, self.lower, self.right, self.upper = l, lo, r, u
        self.width = r - l
        self.height = u - lo
        self.horizontal_center = (l + r) / 2
        self.vertical_center = (lo + u) / 2
        self.parent_img_patch = parent_img_patch
        self._label = ""
        self._score = 1.0

    # -- coordinates ----------------------------------------------------------------------
    def pixel_box(self) -> tuple[int, int, int, int]:
        """This patch as ``(x0, y0, x1, y1)`` in pixels of the full image, origin top-left, y down."""
        H = self._handle._height
        return (self.left, H - self.upper, self.right, H - self.lower)

    @classmethod
    def _from_pixels(cls, handle: ImageHandle, x0: float, y0: float, x1: float, y1: float,
                     parent: "ImagePatch | None" = None) -> "ImagePatch":
        H = handle._height
        return cls(handle, int(round(x0)), int(round(H - y1)), int(round(x1)), int(round(H - y0)),
                   parent_img_patch=parent)

    def _call(self, tool: str, **args: Any) -> Any:
        if self.width <= 0 or self.height <= 0:
            raise EmptyPatchError(f"{tool} on an empty patch ({self.width}x{self.height} pixels at left={self.left}, "
                                  f"lower={self.lower}): crop or find a region with a non-zero area first")
        return self._handle._client.call(tool, self._handle._id, self.pixel_box(), args)

    def __repr__(self) -> str:
        return f"ImagePatch(left={self.left}, lower={self.lower}, right={self.right}, upper={self.upper})"

    # -- tools --------------------------------------------------------------------------
    def find(self, object_name: str) -> List["ImagePatch"]:
        """Returns a list of ImagePatch objects, one per object in this patch matching ``object_name``.

        >>> # return the foo
        >>> def execute_command(image) -> List[ImagePatch]:
        >>>     image_patch = ImagePatch(image)
        >>>     foo_patches = image_patch.find("foo")
        >>>     return foo_patches
        """
        rows = self._call("detect", query=str(object_name))
        out = []
        for x0, y0, x1, y1, score, label in rows:
            p = ImagePatch._from_pixels(self._handle, x0, y0, x1, y1, parent=self)
            p._label, p._score = str(label), float(score)
            out.append(p)
        return out

    def exists(self, object_name: str) -> bool:
        """Returns True if the object specified by ``object_name`` is found in the image, and False otherwise.

        >>> # Are there both cakes and gummy bears in the photo?
        >>> def execute_command(image) -> str:
        >>>     image_patch = ImagePatch(image)
        >>>     is_cake = image_patch.exists("cake")
        >>>     is_gummy_bear = image_patch.exists("gummy bear")
        >>>     return bool_to_yesno(is_cake and is_gummy_bear)
        """
        return len(self.find(object_name)) > 0

    def count(self, object_name: str) -> int:
        """Returns the number of objects matching ``object_name`` in this patch.

        >>> # How many red cubes are there?
        >>> def execute_command(image) -> str:
        >>>     image_patch = ImagePatch(image)
        >>>     return str(image_patch.count("red cube"))
        """
        return len(self.find(object_name))

    def verify_property(self, object_name: str, attribute: str) -> bool:
        """Returns True if the object possesses the property, and False otherwise.

        >>> # Do the letters have blue color?
        >>> def execute_command(image) -> str:
        >>>     image_patch = ImagePatch(image)
        >>>     letters_patches = image_patch.find("letters")
        >>>     return bool_to_yesno(letters_patches[0].verify_property("letters", "blue"))
        """
        return bool(self._call("verify_property", name=str(object_name), prop=str(attribute)))

    def best_text_match(self, option_list: List[str] | None = None, prefix: str | None = None) -> str:
        """Returns the string that best matches the image.

        >>> # Is the cap gold or white?
        >>> def execute_command(image) -> str:
        >>>     image_patch = ImagePatch(image)
        >>>     cap_patches = image_patch.find("cap")
        >>>     return cap_patches[0].best_text_match(["gold", "white"])
        """
        options = [str(o) for o in (option_list or [])]
        if prefix:
            options = [f"{prefix} {o}" for o in options]
        answer = str(self._call("best_text_match", options=options))
        if prefix and answer.startswith(f"{prefix} "):
            answer = answer[len(prefix) + 1:]
        return answer

    def simple_query(self, question: str | None = None) -> str:
        """Returns the answer to a basic question asked about the image (a word or short phrase).

        >>> # Which kind of animal is not eating?
        >>> def execute_command(image) -> str:
        >>>     image_patch = ImagePatch(image)
        >>>     animal_patches = image_patch.find("animal")
        >>>     for animal_patch in animal_patches:
        >>>         if not animal_patch.verify_property("animal", "eating"):
        >>>             return animal_patch.simple_query("What kind of animal is eating?")
        >>>     return image_patch.simple_query("Which kind of animal is not eating?")
        """
        return str(self._call("vqa", question=str(question or "What is this?")))

    def visual_question_answering(self, question: str | None = None) -> str:
        """Same as :meth:`simple_query` (VPD's name)."""
        return self.simple_query(question)

    def query(self, question: str | None = None) -> str:
        """Same as :meth:`simple_query`."""
        return self.simple_query(question)

    def caption(self) -> str:
        """Returns a one-sentence description of the patch."""
        return str(self._call("caption"))

    def compute_depth(self) -> float:
        """Returns the median depth of the image crop (larger is farther).

        >>> # the person closest to the camera
        >>> def execute_command(image) -> ImagePatch:
        >>>     image_patch = ImagePatch(image)
        >>>     person_patches = image_patch.find("person")
        >>>     person_patches.sort(key=lambda person: person.compute_depth())
        >>>     return person_patches[0]
        """
        return float(self._call("depth"))

    def ocr(self) -> str:
        """Returns the text written in the patch, lines in reading order (top to bottom, left to right)."""
        rows = self._call("ocr")
        rows = sorted(rows, key=lambda r: (round(r[1] / 10), r[0]))
        return " ".join(str(r[5]) for r in rows)

    def detect_nudity(self) -> List["ImagePatch"]:
        """Returns one patch per nudity detection; each patch's ``label`` is the body-part class."""
        out = []
        for x0, y0, x1, y1, score, label in self._call("nudity"):
            p = ImagePatch._from_pixels(self._handle, x0, y0, x1, y1, parent=self)
            p._label, p._score = str(label), float(score)
            out.append(p)
        return out

    @property
    def label(self) -> str:
        """The detector's label for a patch returned by ``find`` ('' otherwise)."""
        return self._label

    @property
    def score(self) -> float:
        """The detector's confidence for a patch returned by ``find`` (1.0 otherwise)."""
        return self._score

    def crop(self, left: int, lower: int, right: int, upper: int) -> "ImagePatch":
        """Returns a new ImagePatch cropped from this one; coordinates relative to this patch (y up),
        clamped to this patch.

        >>> # the left half of the image
        >>> def execute_command(image) -> ImagePatch:
        >>>     image_patch = ImagePatch(image)
        >>>     return image_patch.crop(0, 0, image_patch.width // 2, image_patch.height)
        """
        return ImagePatch(self._handle, int(left), int(lower), int(right), int(upper),
                          self.left, self.lower, parent_img_patch=self)

    def overlaps_with(self, left: int, lower: int, right: int, upper: int) -> bool:
        """Returns True if a box (full-image coordinates, y up) overlaps this patch."""
        return self.left <= right and self.right >= left and self.lower <= upper and self.upper >= lower

    def llm_query(self, question: str, long_answer: bool = True) -> str:
        """Same as the free function :func:`llm_query`."""
        return llm_query(question, long_answer=long_answer)

    def print_image(self, size: Any = None) -> None:
        """Kept for ViperGPT compatibility: does nothing (the trace records every patch)."""
        return None


# -- free functions -----------------------------------------------------------------------
def llm_query(question: str, context: str | None = None, long_answer: bool = True) -> str:
    """Answers a text question with a language model (knowledge, reasoning, no image).

    >>> # What is the city this building is in?
    >>> def execute_command(image) -> str:
    >>>     image_patch = ImagePatch(image)
    >>>     building_name = image_patch.simple_query("What is the name of the building?")
    >>>     return llm_query(f"What city is {building_name} in?", long_answer=False)
    """
    if context is not None:
        # never str.format a program-made string: "{0.__class__...}" would walk attributes
        question = str(question)
        question = question.replace("{}", str(context), 1) if "{}" in question else f"{context}\n{question}"
    return str(_current_client().call("llm_query", None, None,
                                      {"question": str(question), "long_answer": bool(long_answer)}))


def process_guesses(prompt: str, guess1: str | None = None, guess2: str | None = None,
                    guess3: str | None = None) -> str:
    """Combines up to three guesses into one answer with the language model.

    ``guess1`` may also be a list of guesses (ViperGPT's OK-VQA prompt passes one).
    """
    raw: list[Any] = []
    for g in (guess1, guess2, guess3):
        raw.extend(g if isinstance(g, (list, tuple)) else [g])
    guesses = [str(g) for g in raw if g]
    if not guesses:
        return llm_query(prompt, long_answer=False)
    if len(set(guesses)) == 1:
        return guesses[0]
    q = f"Question: {prompt}\nGuesses: {', '.join(guesses)}\nThe single best answer is:"
    return llm_query(q, long_answer=False)


def distance(patch_a: Union[ImagePatch, float], patch_b: Union[ImagePatch, float]) -> float:
    """Distance between two patches (pixels between their borders; negative if they overlap), or |a - b|.

    >>> # Return the qux that is closest to the foo
    >>> def execute_command(image):
    >>>     image_patch = ImagePatch(image)
    >>>     qux_patches = image_patch.find('qux')
    >>>     foo_patches = image_patch.find('foo')
    >>>     foo_patch = foo_patches[0]
    >>>     qux_patches.sort(key=lambda x: distance(x, foo_patch))
    >>>     return qux_patches[0]
    """
    if isinstance(patch_a, ImagePatch) and isinstance(patch_b, ImagePatch):
        a_min = (patch_a.left, patch_a.lower)
        a_max = (patch_a.right, patch_a.upper)
        b_min = (patch_b.left, patch_b.lower)
        b_max = (patch_b.right, patch_b.upper)
        u = [max(0, a_min[i] - b_max[i]) for i in range(2)]
        v = [max(0, b_min[i] - a_max[i]) for i in range(2)]
        dist = math.sqrt(sum(x * x for x in u) + sum(x * x for x in v))
        if dist == 0:
            overlap_x = min(a_max[0], b_max[0]) - max(a_min[0], b_min[0])
            overlap_y = min(a_max[1], b_max[1]) - max(a_min[1], b_min[1])
            dist = -float(max(0, overlap_x) * max(0, overlap_y)) ** 0.5
        return float(dist)
    return abs(float(patch_a) - float(patch_b))


def best_image_match(list_patches: List[ImagePatch], content: List[str], return_index: bool = False):
    """Returns the patch most likely to contain ``content`` (or its index).

    Scores each patch by asking the ``best_text_match`` tool whether ``content`` or "nothing" fits it.
    """
    if not list_patches:
        return None
    content = [content] if isinstance(content, str) else list(content)
    best, best_i = None, 0
    for i, patch in enumerate(list_patches):
        hits = sum(1 for c in content if patch.best_text_match([c, "nothing"]) == c)
        if best is None or hits > best:
            best, best_i = hits, i
    return best_i if return_index else list_patches[best_i]


def bool_to_yesno(bool_answer: bool) -> str:
    """Returns "yes" if ``bool_answer`` is True, else "no"."""
    return "yes" if bool_answer else "no"


_NUMBER_WORDS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen twenty".split())}


def coerce_to_numeric(string: Any, no_string: bool = False) -> Any:
    """Extracts the first number from a string ("about 5 cm" -> 5.0, "three" -> 3); the input otherwise.

    With ``no_string=True`` a string without a number raises ValueError.
    """
    if isinstance(string, (int, float)) and not isinstance(string, bool):
        return string
    text = str(string).strip().lower()
    m = re.search(r"-?\d+(?:\.\d+)?", text.replace(",", ""))
    if m:
        value = float(m.group())
        return int(value) if value.is_integer() else value
    for word in re.findall(r"[a-z]+", text):
        if word in _NUMBER_WORDS:
            return _NUMBER_WORDS[word]
    if no_string:
        raise ValueError(f"no number in {string!r}")
    return string


def count(patches: Any) -> int:
    """Number of items in a list of patches (or in any list)."""
    return len(patches)


def formatting_answer(answer: Any) -> Any:
    """VPD's answer formatting: patches become their boxes, bools become yes/no, strings are trimmed."""
    if isinstance(answer, ImagePatch):
        return list(answer.pixel_box())
    if isinstance(answer, bool):
        return bool_to_yesno(answer)
    if isinstance(answer, (list, tuple)):
        if answer and all(isinstance(a, ImagePatch) for a in answer):
            return [list(a.pixel_box()) for a in answer]
        return [formatting_answer(a) for a in answer]
    if isinstance(answer, str):
        return answer.strip()
    return answer


#: Names a program may use besides builtins (the sandbox exposes exactly these).
PROGRAM_API: dict[str, Any] = {
    "ImagePatch": ImagePatch, "llm_query": llm_query, "process_guesses": process_guesses,
    "distance": distance, "best_image_match": best_image_match, "bool_to_yesno": bool_to_yesno,
    "coerce_to_numeric": coerce_to_numeric, "count": count, "formatting_answer": formatting_answer,
    "List": List, "Union": Union, "math": None,  # math is added by the runner as a safe proxy
}
del PROGRAM_API["math"]


#: Bounds of :func:`answer_to_plain`: nesting depth, containers + items, characters of text.
MAX_ANSWER_DEPTH = 20
MAX_ANSWER_ITEMS = 10_000
MAX_ANSWER_CHARS = 1_000_000
_MAX_INT_BITS = 4_000  # ~1200 decimal digits; bigger ints are refused (JSON readers choke on them)


def answer_to_plain(value: Any, *, _depth: int = 0, _budget: list[int] | None = None) -> Any:
    """Convert a program's return value to plain JSON data; patches become ``{"box": [x0,y0,x1,y1]}``.

    Only **exact** built-in types pass (a ``str`` subclass with a hostile ``__eq__`` is refused);
    NaN and ±Infinity are refused (ValueError: JSON has no such numbers, and no label equals them);
    dict keys must be exact ``str``/``int``/``float``/``bool``/``None``. Bounded by
    :data:`MAX_ANSWER_DEPTH`, :data:`MAX_ANSWER_ITEMS` and :data:`MAX_ANSWER_CHARS` (ValueError
    beyond). Never calls a method of a program-made object.
    """
    budget = _budget if _budget is not None else [MAX_ANSWER_ITEMS, MAX_ANSWER_CHARS]
    if _depth > MAX_ANSWER_DEPTH:
        raise ValueError("answer nested too deeply")
    budget[0] -= 1
    if budget[0] < 0:
        raise ValueError(f"answer has too many items (limit {MAX_ANSWER_ITEMS})")
    t = type(value)
    if value is None or t is bool:
        return value
    if t is float:
        if not math.isfinite(value):
            raise ValueError(f"answer is {value!r}, not a finite number (return a number or a string)")
        return value
    if t is int:
        if value.bit_length() > _MAX_INT_BITS:
            raise ValueError("answer integer too large")
        return value
    if t is str:
        budget[1] -= len(value)
        if budget[1] < 0:
            raise ValueError(f"answer text too long (limit {MAX_ANSWER_CHARS} characters)")
        return value
    if t is ImagePatch:
        return {"box": list(ImagePatch.pixel_box(value))}
    if t is list or t is tuple:
        return [answer_to_plain(v, _depth=_depth + 1, _budget=budget) for v in value]
    if t is dict:
        out = {}
        for k, v in value.items():
            if not (k is None or type(k) in (str, int, float, bool)):
                raise TypeError(f"answer dict key of type {type(k).__name__} is not plain data")
            key = answer_to_plain(k, _depth=_depth + 1, _budget=budget)
            out[key if type(key) is str else str(key)] = answer_to_plain(v, _depth=_depth + 1, _budget=budget)
        return out
    raise TypeError(f"answer of type {t.__name__} is not plain data")
