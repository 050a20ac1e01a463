"""ImagePatch (ViperGPT y-up convention) and the free functions, executed in-process on real scenes."""

from __future__ import annotations

from typing import Any

import pytest

from vpd.benchmarks.shapes import Scene, ShapeObject, render_scene
from vpd.tools import load
from vpd.tools.errors import ToolError
from vpd.tools.host import ToolHost
from vpd.tools.image_patch import (ImageHandle, ImagePatch, answer_to_plain, best_image_match, bind_client,
                                   bool_to_yesno, coerce_to_numeric, count, distance, formatting_answer,
                                   llm_query, process_guesses)
from vpd.tools.local_client import LocalClient

H = 240
# red cube high up on the left, blue sphere low on the right, green cylinder low on the left
SCENE = Scene(id="ip", seed=1, index=0, width=320, height=H, noise=True, objects=(
    ShapeObject(shape="cube", color="red", size="large", bbox=(20, 20, 66, 66)),
    ShapeObject(shape="sphere", color="blue", size="small", bbox=(220, 150, 244, 174)),
    ShapeObject(shape="cylinder", color="green", size="small", bbox=(40, 180, 55, 204)),
))


@pytest.fixture(scope="module")
def image():
    return render_scene(SCENE)


@pytest.fixture()
def client():
    return LocalClient(ToolHost(load("shapes")))


def test_coordinate_mapping_viper_y_up_vs_pixel_box(client, image):
    handle = client.open(image)
    (cube,) = ImagePatch(handle).find("red cube")
    # pixel box (y down) 20..66 -> ViperGPT y-up: lower = H - 66, upper = H - 20
    assert (cube.left, cube.right) == (20, 66)
    assert (cube.lower, cube.upper) == (H - 66, H - 20)
    assert cube.lower < cube.upper
    assert cube.pixel_box() == (20, 20, 66, 66)
    assert cube.width == 46 and cube.height == 46
    assert cube.horizontal_center == 43 and cube.vertical_center == H - 43
    assert cube.label == "large red cube" and 0 < cube.score <= 1


ABOVE_VIPER = '''
def execute_command(image):
    image_patch = ImagePatch(image)
    cube = image_patch.find("red cube")[0]
    sphere = image_patch.find("blue sphere")[0]
    return bool_to_yesno(cube.vertical_center > sphere.vertical_center)  # y up: larger is higher
'''
BELOW_VIPER = '''
def execute_command(image):
    image_patch = ImagePatch(image)
    cube = image_patch.find("red cube")[0]
    sphere = image_patch.find("blue sphere")[0]
    return bool_to_yesno(sphere.upper < cube.lower)  # sphere entirely below the cube
'''


def test_above_below_programs_in_viper_convention(client, image):
    assert client.run(ABOVE_VIPER, image) == "yes"
    assert client.run(BELOW_VIPER, image) == "yes"
    # the same question with the pixel (y-down) reading of the attributes would be wrong:
    flipped = ABOVE_VIPER.replace("cube.vertical_center > sphere", "cube.vertical_center < sphere")
    assert client.run(flipped, image) == "no"


def test_above_below_in_pixel_convention(image):
    tb = load("shapes")
    (cube,) = tb.detect(image, "red cube")
    (sphere,) = tb.detect(image, "blue sphere")
    assert cube.y1 < sphere.y0  # y down: the cube (above) has the smaller y
    assert (cube.y0 + cube.y1) / 2 < (sphere.y0 + sphere.y1) / 2


def test_crop_is_relative_and_y_up(client, image):
    handle = client.open(image)
    full = ImagePatch(handle)
    bottom = full.crop(0, 0, full.width, full.height // 2)  # y up: the lower half of the image
    assert bottom.pixel_box() == (0, 120, 320, 240)
    assert {p.label for p in bottom.find("object")} == {"small blue sphere", "small green cylinder"}
    left_bottom = bottom.crop(0, 0, bottom.width // 2, bottom.height)  # relative to `bottom`
    assert left_bottom.pixel_box() == (0, 120, 160, 240)
    (cyl,) = left_bottom.find("object")
    assert cyl.pixel_box()[0] >= 38 and cyl.pixel_box()[2] <= 57  # mapped back to full-image pixels
    # the host recorded the crop in pixel convention
    call = client.host.calls[-1]
    assert call.tool == "detect" and call.box is not None and (call.box.y0, call.box.y1) == (120, 240)
    # ImagePatch(patch, ...) is relative to the parent too
    sub = ImagePatch(bottom, 0, 0, 10, 10)
    assert sub.pixel_box() == (0, 230, 10, 240)
    # coordinates are clipped to the image
    assert full.crop(-50, -50, 1000, 1000).pixel_box() == (0, 0, 320, 240)
    # and to the parent patch (ViperGPT slices the parent's pixels): a margin cannot leave `bottom`
    grown = left_bottom.crop(-20, -20, left_bottom.width + 500, left_bottom.height + 30)
    assert grown.pixel_box() == (0, 120, 160, 240)
    assert bottom.crop(10, 100, 50, 400).pixel_box() == (10, 120, 50, 140)  # y up: rows 140..120 from the top


def test_overlaps_with_and_distance(client, image):
    handle = client.open(image)
    cube = ImagePatch(handle).find("red cube")[0]
    sphere = ImagePatch(handle).find("blue sphere")[0]
    assert cube.overlaps_with(cube.left + 5, cube.lower + 5, cube.right + 50, cube.upper + 50)
    assert not cube.overlaps_with(sphere.left, sphere.lower, sphere.right, sphere.upper)
    assert distance(cube, sphere) > 100
    assert distance(cube, cube) < 0  # overlapping patches: negative
    assert distance(3, 7.5) == 4.5


def test_patch_methods_call_tools(client, image):
    handle = client.open(image)
    p = ImagePatch(handle)
    assert p.exists("green cylinder") and not p.exists("yellow triangle")
    assert p.count("small objects") == 2
    cube = p.find("cube")[0]
    assert cube.simple_query("What color is this?") == "red"
    assert cube.visual_question_answering("What shape is this?") == "cube"
    assert cube.verify_property("cube", "large") is True
    assert cube.best_text_match(option_list=["blue", "red"]) == "red"
    assert cube.best_text_match(["blue", "red"], prefix="the object is") == "red"
    assert cube.compute_depth() < p.find("sphere")[0].compute_depth()  # large = near
    assert "red cube" in p.caption()


def test_free_functions(client, image):
    handle = client.open(image)
    patches = ImagePatch(handle).find("object")
    assert count(patches) == 3
    bind_client(client)
    try:
        assert best_image_match(list_patches=patches, content=["blue sphere"]).label == "small blue sphere"
        assert best_image_match(patches, ["green cylinder"], return_index=True) == [
            p.label for p in patches].index("small green cylinder")
    finally:
        bind_client(None)
    assert best_image_match([], ["x"]) is None
    assert bool_to_yesno(True) == "yes" and bool_to_yesno(0) == "no"
    assert coerce_to_numeric("about 5 cm") == 5 and coerce_to_numeric("2.5") == 2.5
    assert coerce_to_numeric("three") == 3 and coerce_to_numeric(7) == 7
    assert coerce_to_numeric("none") == "none"
    with pytest.raises(ValueError, match="no number"):
        coerce_to_numeric("none", no_string=True)
    assert formatting_answer(True) == "yes" and formatting_answer(" red ") == "red"
    assert formatting_answer(patches[0]) == list(patches[0].pixel_box())
    assert formatting_answer(patches[:2]) == [list(p.pixel_box()) for p in patches[:2]]


class FakeLLMClient:
    """Answers llm_query with a canned string and records the questions (unit test of the helpers)."""

    def __init__(self) -> None:
        self.questions: list[str] = []

    def call(self, tool: str, image_id: Any, box: Any, args: dict[str, Any]) -> Any:
        assert tool == "llm_query"
        self.questions.append(args["question"])
        return "paris"


def test_llm_query_and_process_guesses_use_the_bound_client():
    with pytest.raises(RuntimeError, match="no tool client bound"):
        llm_query("capital of France?")
    fake = FakeLLMClient()
    bind_client(fake)
    try:
        assert llm_query("What is the capital of {}?", context="France") == "paris"
        assert fake.questions[-1] == "What is the capital of France?"
        assert process_guesses("q", "rome", "rome") == "rome"  # agreement needs no LLM call
        n = len(fake.questions)
        assert process_guesses("capital?", "paris", "lyon") == "paris"
        assert len(fake.questions) == n + 1 and "paris, lyon" in fake.questions[-1]
    finally:
        bind_client(None)


def test_program_may_return_patches(client, image):
    src = '''
def execute_command(image) -> List[ImagePatch]:
    return ImagePatch(image).find("small objects")
'''
    out = client.run(src, image)
    plain = answer_to_plain(out)
    assert [d["box"] for d in plain] == [list(p.pixel_box()) for p in out]
    with pytest.raises(TypeError, match="not plain data"):
        answer_to_plain(object())


def test_tool_errors_reach_the_program_with_a_clear_message(client, image):
    src = 'def execute_command(image):\n    return ImagePatch(image).find("red dog")\n'
    with pytest.raises(ToolError, match="unknown word 'dog'"):
        client.run(src, image)
    assert client.host.calls[-1].error and "dog" in client.host.calls[-1].error


def test_image_patch_rejects_other_inputs():
    with pytest.raises(TypeError, match="ImagePatch needs"):
        ImagePatch("scene.png")
    h = ImageHandle("img0", 100, 50, FakeLLMClient())
    assert repr(h) == "<image 100x50>" and ImagePatch(h).pixel_box() == (0, 0, 100, 50)
