"""Tool-cache keys: per-backend argument normalisation (same key only when the backend answers the
same), tool-spec defaults, and single-flight coalescing of equal concurrent calls in the ToolServer."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from vpd.benchmarks.shapes import generate_scene, render_scene
from vpd.tools import Toolbox, load
from vpd.tools.backend import Backend
from vpd.tools.backends.groundingdino import GroundingDinoBackend
from vpd.tools.backends.yolo import UltralyticsBackend, YoloWorldBackend
from vpd.tools.cache import ToolCache
from vpd.tools.cache_keys import normalise_text
from vpd.tools.errors import ToolError
from vpd.tools.server import ToolServer


@pytest.fixture(scope="module")
def image():
    # seed 1 scene 0: cyan triangles, a green and a red triangle, a cyan cube, a large yellow sphere
    return render_scene(generate_scene(0, 1))


@pytest.fixture(scope="module")
def shapes():
    return load("shapes")


def _same(tb, image, tool, a, b):
    """(keys equal, results equal) for one tool called with argument dicts a and b."""
    return (tb.cache_key(tool, image, a) == tb.cache_key(tool, image, b),
            tb.call(tool, image, **a) == tb.call(tool, image, **b))


@pytest.mark.parametrize("a,b", [
    ("yellow sphere", "Yellow  Sphere"),       # case, whitespace
    ("yellow spheres", "yellow sphere"),       # plural
    ("a yellow sphere", "yellow sphere"),      # article
    ("yellow ball", "yellow sphere"),          # synonym the parser maps
    ("big yellow circle", "large yellow sphere"),
    ("cyan triangles", "the cyan triangle"),
])
def test_shapes_queries_the_parser_reads_alike_share_a_key(shapes, image, a, b):
    for tool in ("detect", "count"):
        assert _same(shapes, image, tool, {"query": a}, {"query": b}) == (True, True)


@pytest.mark.parametrize("a,b", [("cyan triangle", "cyan cube"), ("triangle", "small triangle"),
                                 ("cyan object", "red object")])
def test_shapes_different_queries_get_different_keys(shapes, image, a, b):
    keys_equal, results_equal = _same(shapes, image, "detect", {"query": a}, {"query": b})
    assert not keys_equal and not results_equal


def test_shapes_vqa_ignores_case_and_punctuation_only(shapes, image):
    assert _same(shapes, image, "vqa", {"question": "What color is the cube?"},
                 {"question": "what COLOR is the cube"}) == (True, True)
    assert _same(shapes, image, "vqa", {"question": "What color is the cube?"},
                 {"question": "What shape is the cube?"}) == (False, False)


def test_shapes_verify_property_parsed(shapes, image):
    assert _same(shapes, image, "verify_property", {"name": "spheres", "prop": "Yellow"},
                 {"name": "a ball", "prop": "yellow"}) == (True, True)
    assert _same(shapes, image, "verify_property", {"name": "sphere", "prop": "yellow"},
                 {"name": "sphere", "prop": "red"}) == (False, False)


def test_shapes_best_text_match_options_stay_exact(shapes, image):
    # the answer is one of the options verbatim, so "Yellow sphere" and "yellow sphere" differ
    a = {"options": ["Yellow sphere", "red cube"]}
    b = {"options": ["yellow sphere", "red cube"]}
    assert _same(shapes, image, "best_text_match", a, b) == (False, False)


def test_unparseable_query_keeps_its_exact_text(shapes, image):
    assert shapes.cache_key("detect", image, {"query": "black dog"}) != \
        shapes.cache_key("detect", image, {"query": "Black dog"})


def test_crops_of_identical_pixels_share_a_key(shapes):
    img = Image.new("RGB", (100, 50), (255, 255, 255))
    left, right = img.crop((0, 0, 50, 50)), img.crop((50, 0, 100, 50))
    assert shapes.cache_key("detect", left, {"query": "cube"}) == shapes.cache_key("detect", right, {"query": "cube"})
    assert shapes.cache_key("detect", left, {"query": "cube"}) != shapes.cache_key("detect", img, {"query": "cube"})


class FakeTextBackend(Backend):
    """Echoes its text arguments: case and whitespace matter to it."""

    name = "faketext"
    provides = frozenset({"vqa", "llm_query"})

    def __init__(self, **options):
        super().__init__(**options)
        self.calls = 0

    def vqa(self, image, question):
        self.calls += 1
        return f"you asked: {question}"

    def llm_query(self, question, long_answer=False):  # its own default disagrees with the spec's
        self.calls += 1
        return f"{question} ({'long' if long_answer else 'short'})"


class FakeSpaceBackend(FakeTextBackend):
    text_args = {"vqa": "space"}

    def vqa(self, image, question):
        self.calls += 1
        return f"you asked: {' '.join(question.split())}"


def test_default_backend_keys_are_exact_because_answers_differ():
    tb = Toolbox({"vqa": FakeTextBackend()})
    img = Image.new("RGB", (8, 8))
    assert _same(tb, img, "vqa", {"question": "What is it?"}, {"question": "what is it?"}) == (False, False)
    assert _same(tb, img, "vqa", {"question": "what is it?"}, {"question": " what  is it?"}) == (False, False)


def test_declared_space_mode_merges_whitespace_but_not_case():
    tb = Toolbox({"vqa": FakeSpaceBackend()})
    img = Image.new("RGB", (8, 8))
    assert _same(tb, img, "vqa", {"question": "what is it?"}, {"question": " what  is it? "}) == (True, True)
    assert _same(tb, img, "vqa", {"question": "What is it?"}, {"question": "what is it?"}) == (False, False)


def test_spec_defaults_are_filled_for_key_and_backend():
    backend = FakeTextBackend()
    tb = Toolbox({"llm_query": backend})
    assert tb.cache_key("llm_query", None, {"question": "q"}) == \
        tb.cache_key("llm_query", None, {"question": "q", "long_answer": True})
    assert tb.cache_key("llm_query", None, {"question": "q"}) != \
        tb.cache_key("llm_query", None, {"question": "q", "long_answer": False})
    # the backend's own default (False) is never used: the spec's True is passed explicitly
    assert tb.call("llm_query", None, question="q") == tb.call("llm_query", None, question="q", long_answer=True)
    assert tb.call("llm_query", None, question="q").endswith("(long)")


def test_real_backend_declarations():
    assert GroundingDinoBackend.text_args == {"detect": "space"}  # label echoes the query's case
    assert YoloWorldBackend.text_args == {"detect": "space"}
    assert UltralyticsBackend.text_args == {"detect": "fold"}  # class lookup on lower-cased words
    assert Backend.text_args == {}
    assert normalise_text(" A  b ", "space") == "A b" and normalise_text(" A  b ", "fold") == "a b"
    with pytest.raises(ValueError):
        normalise_text("x", "stem")


class FakeGatedBackend(Backend):
    """Blocks in ``vqa`` until released, so concurrent equal calls overlap deterministically."""

    name = "fakegated"
    provides = frozenset({"vqa"})

    def __init__(self, **options):
        super().__init__(**options)
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def vqa(self, image, question):
        self.calls += 1
        self.entered.set()
        assert self.release.wait(10)
        if question == "bad":
            raise ToolError("cannot answer 'bad'")
        return f"answer {self.calls}"


@pytest.mark.parametrize("question", ["ok", "bad"])
def test_server_coalesces_equal_calls_in_flight(question):
    backend = FakeGatedBackend()
    server = ToolServer(Toolbox({"vqa": backend}, cache=ToolCache(None)))
    img = Image.new("RGB", (8, 8))
    leader = server.submit_json  # the first call blocks inside the backend
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(leader, "vqa", img, question=question)
        assert backend.entered.wait(10)
        followers = [server.submit_json("vqa", img, question=question) for _ in range(3)]
        backend.release.set()
        lead_future = first.result(10)
        outcomes = [f.exception(10) or f.result(10) for f in [lead_future] + followers]
    assert backend.calls == 1 and server.stats["coalesced"] == 3 and server.stats["backend_calls"] == 1
    if question == "ok":
        assert outcomes[0] == ("answer 1", False)
        assert all(o == ("answer 1", True) for o in outcomes[1:])
        assert server.call_json("vqa", img, question=question) == ("answer 1", True)  # now a cache hit
        assert backend.calls == 1
    else:
        assert all(isinstance(o, ToolError) for o in outcomes)
        with pytest.raises(ToolError):  # errors are not cached: the slot is free, the backend runs again
            server.call_json("vqa", img, question=question)
        assert backend.calls == 2
    server.close()
