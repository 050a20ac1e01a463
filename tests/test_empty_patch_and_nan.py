"""No invented answers: a tool call on a zero-area patch fails inside the program, and NaN/Infinity
never pass as answers or tool results (JSON has no such numbers)."""

from __future__ import annotations

import json
import math

import pytest
from PIL import Image
from sandbox_fake_backend import fake_toolbox

from vpd.benchmarks.shapes import Scene, ShapeObject, render_scene
from vpd.sandbox import SandboxPool, protocol
from vpd.tools import load
from vpd.tools.errors import ToolError
from vpd.tools.host import ToolHost
from vpd.tools.image_patch import EmptyPatchError, ImagePatch, answer_to_plain
from vpd.tools.local_client import LocalClient

SCENE = Scene(id="ep", seed=1, index=0, width=160, height=120, noise=False, objects=(
    ShapeObject(shape="cube", color="red", size="large", bbox=(20, 20, 66, 66)),))


@pytest.fixture(scope="module")
def image():
    return render_scene(SCENE)


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(workers=1, tools=fake_toolbox(), timeout_s=3.0) as p:
        yield p


CALLS = {
    "find": lambda p: p.find("cube"), "exists": lambda p: p.exists("cube"), "count": lambda p: p.count("cube"),
    "verify_property": lambda p: p.verify_property("cube", "red"), "simple_query": lambda p: p.simple_query("What?"),
    "best_text_match": lambda p: p.best_text_match(["a", "b"]), "compute_depth": lambda p: p.compute_depth(),
    "caption": lambda p: p.caption(),
}


@pytest.mark.parametrize("method", sorted(CALLS))
@pytest.mark.parametrize("crop", [(10, 10, 10, 50), (10, 30, 40, 30)], ids=["zero-width", "zero-height"])
def test_tool_on_empty_patch_raises_in_process(image, method, crop):
    host = ToolHost(load("shapes"))
    patch = ImagePatch(LocalClient(host).open(image)).crop(*crop)
    assert patch.width == 0 or patch.height == 0
    with pytest.raises(EmptyPatchError, match="empty patch"):
        CALLS[method](patch)
    assert host.calls == []  # nothing reached a tool, nothing invented in the trace


def test_non_empty_crop_still_works(image):
    patch = ImagePatch(LocalClient(ToolHost(load("shapes"))).open(image))
    assert patch.crop(0, 0, 80, 120).exists("red cube")


def test_host_refuses_an_empty_box_and_records_the_error(image):
    host = ToolHost(load("shapes"))
    image_id, _, _ = host.add_image(image)
    for tool, args in (("detect", {"query": "cube"}), ("depth", {}), ("verify_property", {"name": "cube", "prop": "red"})):
        with pytest.raises(ToolError, match="empty patch"):
            host.call(tool, image_id, [30, 30, 30, 60], args)
    assert [c.error is not None and "empty patch" in c.error for c in host.calls] == [True, True, True]
    assert all(c.result is None for c in host.calls)


EMPTY_FIND = '''
def execute_command(image):
    image_patch = ImagePatch(image)
    strip = image_patch.crop(5, 0, 5, image_patch.height)
    return bool_to_yesno(strip.exists("cup"))
'''


def test_empty_patch_fails_the_candidate_in_the_sandbox(pool):
    r = pool.run(EMPTY_FIND, image=Image.new("RGB", (40, 30)))
    assert r.status == "error" and r.answer is None
    assert r.error.startswith("EmptyPatchError") and "line 5" in r.error
    assert r.trace.calls == ()


@pytest.mark.parametrize("expr", ["float('nan')", "float('inf')", "[1, -float('inf')]", "{'a': float('nan')}"])
def test_nan_or_infinite_answers_fail_with_a_clear_error(pool, expr):
    r = pool.run(f"def execute_command(image):\n    return {expr}\n")
    assert r.status == "error" and r.answer is None
    assert "not a finite number" in r.error
    json.loads(r.to_json())  # strict JSON
    assert "NaN" not in r.to_json() and "Infinity" not in r.to_json()


def test_finite_floats_still_pass(pool):
    assert pool.run("def execute_command(image):\n    return [0.5, -2.0, 1e300]\n").answer == [0.5, -2.0, 1e300]


def test_answer_to_plain_refuses_nan():
    with pytest.raises(ValueError, match="not a finite number"):
        answer_to_plain({"x": [math.nan]})


class FakeNaNToolbox:
    """A toolbox whose every tool answers NaN (as a diverged depth model might)."""

    backends: dict = {}

    def call_json(self, tool, image, **args):
        return float("nan"), False


def test_host_refuses_a_nan_tool_result(image):
    host = ToolHost(FakeNaNToolbox())  # type: ignore[arg-type]
    image_id, _, _ = host.add_image(image)
    with pytest.raises(ToolError, match="non-finite"):
        host.call("depth", image_id, None, {})
    assert host.calls[-1].result is None and "non-finite" in host.calls[-1].error


class FakeNaNHost:
    """A tool host that answers every request with a NaN result (bypassing ToolHost's check)."""

    def __init__(self, toolbox):
        self.inner = ToolHost(toolbox)

    def add_image(self, image):
        return self.inner.add_image(image)

    def handle(self, request):
        return {"ok": True, "result": float("nan")}

    def trace(self, output=None):
        return self.inner.trace(output)


def test_pool_turns_an_unsendable_tool_result_into_a_program_error():
    with SandboxPool(workers=1, tools=fake_toolbox(), host_factory=FakeNaNHost, timeout_s=3.0) as p:
        r = p.run("def execute_command(image):\n    return ImagePatch(image).compute_depth()\n",
                  image=Image.new("RGB", (20, 20)))
        assert r.status == "error" and "result cannot be sent" in r.error
        assert p.run("def execute_command(image):\n    return 1\n").answer == 1  # the worker lives on


def test_protocol_is_strict_json_both_ways():
    with pytest.raises(ValueError):
        protocol.encode({"type": "result", "answer": float("nan")})
    body = b'{"type": "result", "answer": NaN}'
    with pytest.raises(protocol.ProtocolError):
        protocol.decode(body)


def test_records_refuse_to_serialise_nan():
    from vpd.types import Box, Candidate

    with pytest.raises(ValueError, match="Candidate holds a NaN/Infinity number"):
        Candidate(example_id="e", index=0, program=None, answer=float("nan")).to_json()
    assert json.loads(Box(x0=0, y0=0, x1=1.5, y1=2).to_json())["x1"] == 1.5
