"""Toolbox and load(spec): backend specs, errors with suggestions, the cache hook, and the ToolHost."""

from __future__ import annotations

from typing import Any

import pytest

from vpd.benchmarks.shapes import generate_scene, render_scene
from vpd.images import ImageLoadError
from vpd.registry import UnknownNameError
from vpd.tools import ToolError, ToolNotAvailable, Toolbox, load
from vpd.tools.backends.shapes import ShapesBackend
from vpd.tools.host import ToolHost


@pytest.fixture(scope="module")
def image():
    return render_scene(generate_scene(0, 1))


def test_load_by_name_maps_every_provided_tool():
    tb = load("shapes")
    assert isinstance(tb, Toolbox)
    assert set(ShapesBackend.provides) <= set(tb.tools) and "crop" in tb.tools
    assert len({id(b) for b in tb.backends.values()}) == 1  # one instance shared by its tools
    assert tb.describe()["detect"] == "shapes:2:-:"  # name:version:settings digest (none):weight hash (none)


def test_load_mapping_and_yaml_file(tmp_path, image):
    tb = load({"detect": "shapes", "vqa": {"backend": "shapes", "cache_size": 0}})
    assert set(tb.backends) == {"detect", "vqa"}
    assert tb.backends["vqa"].options["cache_size"] == 0
    cfg = tmp_path / "tools.yaml"
    cfg.write_text("default: shapes\nbackends:\n  shapes: {cache_size: 3}\n")
    tb2 = load(str(cfg))
    assert tb2.backends["detect"].options["cache_size"] == 3
    assert tb2.count(image, "object") == len(generate_scene(0, 1).objects)


@pytest.mark.parametrize("spec,match", [
    ("shapse", "unknown backend 'shapse'; did you mean 'shapes'"),
    ({"detcet": "shapes"}, "unknown tool 'detcet'; did you mean 'detect'"),
])
def test_unknown_backend_or_tool_names_suggest(spec, match):
    with pytest.raises(UnknownNameError, match=match):
        load(spec)


def test_backend_without_the_tool_and_missing_config(tmp_path):
    with pytest.raises(ToolError, match="does not provide tool 'ocr'"):
        load({"ocr": "shapes"})
    with pytest.raises(FileNotFoundError, match="tools config not found"):
        load(str(tmp_path / "nope.yaml"))
    tb = load({"detect": "shapes"})
    with pytest.raises(ToolNotAvailable, match="no backend provides tool 'vqa'"):
        tb.vqa("x.png", "What?")
    with pytest.raises(UnknownNameError, match="did you mean 'caption'"):
        tb.call("captoin", None)


class FakeCache:
    """A dict-backed cache for testing the Toolbox's cache hook."""

    def __init__(self) -> None:
        self.data: dict[str, Any] = {}

    def get(self, key: str) -> Any | None:
        return self.data.get(key)

    def put(self, key: str, value: Any) -> None:
        self.data[key] = value


def test_cache_hook(image):
    cache = FakeCache()
    tb = load("shapes", cache=cache)
    first, cached1 = tb.call_json("detect", image, query="Red  Cube ")
    again, cached2 = tb.call_json("detect", image, query="red cube")  # normalised args share a key
    assert (cached1, cached2) == (False, True) and first == again
    assert tb.stats == {"calls": 2, "cache_hits": 1, "analysis_hits": 0, "backend_calls": 1}
    assert sorted(k.split("|")[1] for k in cache.data) == ["@analysis", "detect"]
    assert all(k.endswith("|shapes:2:-:") for k in cache.data)


def test_new_query_on_an_analysed_image_needs_no_backend_call(image):
    cache = FakeCache()
    tb = load("shapes", cache=cache)
    red, c1 = tb.call_json("detect", image, query="red cube")
    n, c2 = tb.call_json("count", image, query="blue object")  # another tool, another query: same analysis
    cap, c3 = tb.call_json("caption", image)
    assert (c1, c2, c3) == (False, True, True)
    assert tb.stats["backend_calls"] == 1 and tb.stats["analysis_hits"] == 2
    direct = load("shapes")  # no cache: every call runs the backend, and answers the same
    assert direct.call("detect", image, query="red cube") == red
    assert direct.call("count", image, query="blue object") == n
    assert direct.call("caption", image) == cap
    assert direct.stats["backend_calls"] == 3


def test_share_analyses_off_keys_every_query_separately(image):
    tb = load("shapes", cache=FakeCache(), share_analyses=False)
    tb.call_json("detect", image, query="red cube")
    _, cached = tb.call_json("count", image, query="blue object")
    assert cached is False and tb.stats["backend_calls"] == 2 and tb.stats["analysis_hits"] == 0


def test_depth_of_a_box_is_not_answered_from_the_whole_image_analysis(image):
    tb = load("shapes", cache=FakeCache())
    tb.call_json("caption", image)
    _, whole_cached = tb.call_json("depth", image)
    _, box_cached = tb.call_json("depth", image, box=[0, 0, 40, 40])
    assert whole_cached is True and box_cached is False


def test_a_query_the_backend_rejects_still_caches_the_analysis(image):
    from vpd.tools.errors import UnsupportedQuery

    cache = FakeCache()
    tb = load("shapes", cache=cache)
    with pytest.raises(UnsupportedQuery):
        tb.call_json("detect", image, query="giraffe")
    assert [k.split("|")[1] for k in cache.data] == ["@analysis"]
    _, cached = tb.call_json("detect", image, query="cube")
    assert cached is True and tb.stats["backend_calls"] == 1


def test_json_results_and_typed_helpers(image):
    tb = load("shapes")
    rows = tb.call("detect", image, query="object")
    assert all(len(r) == 6 and isinstance(r[5], str) for r in rows)
    assert isinstance(tb.verify_property(image, "object", "red"), bool)
    assert isinstance(tb.depth(image), float)
    assert isinstance(tb.count(image, "object"), int)


def test_bad_image_inputs(tmp_path):
    tb = load("shapes")
    with pytest.raises(ImageLoadError, match="image file not found: .*missing.png"):
        tb.detect(tmp_path / "missing.png", "cube")
    (tmp_path / "bad.png").write_bytes(b"garbage")
    with pytest.raises(ImageLoadError, match="corrupt or unreadable image .*bad.png"):
        tb.caption(tmp_path / "bad.png")
    with pytest.raises(ImageLoadError, match="cannot decode image bytes"):
        tb.detect(b"\x00\x01", "cube")
    with pytest.raises(ToolError, match="needs an image"):
        tb.call("detect", None, query="cube")


def test_host_maps_crops_and_reports_errors(image):
    host = ToolHost(load("shapes"), max_calls=3)
    image_id, w, h = host.add_image(image)
    full = host.call("detect", image_id, None, {"query": "object"})
    x0, y0, x1, y1 = (int(v) for v in full[0][:4])
    crop = host.call("detect", image_id, (x0 - 2, y0 - 2, x1 + 2, y1 + 2), {"query": "object"})
    assert any(abs(r[0] - x0) <= 1 and abs(r[1] - y0) <= 1 for r in crop)  # back in full-image pixels
    bad = host.handle({"tool": "detect", "image_id": image_id, "box": None, "args": {"query": "red dog"}})
    assert bad == {"ok": False, "error": bad["error"]} and "unknown word 'dog'" in bad["error"]
    assert host.handle({"tool": "detect", "image_id": image_id, "box": None, "args": {}})["ok"] is False
    assert "too many tool calls" in host.handle({"tool": "count", "image_id": image_id, "box": None,
                                                 "args": {"query": "cube"}})["error"]
    assert "unknown tool 'detet'; did you mean 'detect'" in host.handle({"tool": "detet", "image_id": image_id})["error"]
    assert len(host.trace().calls) == 3 and host.trace().calls[2].error


def test_registering_analysed_tools_needs_analyse_and_answer():
    from vpd.tools.backend import BACKENDS, Backend, register_backend
    from vpd.tools.errors import ToolError

    class HalfAnalysed(Backend):
        provides = frozenset({"detect"})
        analysed = frozenset({"detect"})

        def analyse(self, image):
            return []

    with pytest.raises(ValueError, match="does not implement both analyse\\(\\) and answer_from\\(\\)"):
        register_backend("test-half-analysed")(HalfAnalysed)
    assert "test-half-analysed" not in BACKENDS.names()

    class InstanceAnswerOnly(HalfAnalysed):  # answers need the instance: a remote host could not answer
        def answer(self, tool, analysis, **args):
            return analysis

    with pytest.raises(ValueError, match="answer_from"):
        register_backend("test-instance-answer")(InstanceAnswerOnly)
    assert "test-instance-answer" not in BACKENDS.names()

    class NotAnalysed(Backend):
        provides = frozenset({"detect"})

    with pytest.raises(ToolError, match="no image analysis"):
        NotAnalysed().analyse(None)
