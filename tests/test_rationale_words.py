"""The ``words`` rewriter: the template rationale in the ``find`` task's vocabulary, no pixel numbers."""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from distill_fixtures import make_shapes_run  # noqa: E402

from vpd.checkers import checker_for  # noqa: E402
from vpd.distill.pretrain_tasks import PRETRAIN_TASKS  # noqa: E402
from vpd.distill.rationale import TraceItem, stated_answer  # noqa: E402
from vpd.distill.rationale_check import check_rationale  # noqa: E402
from vpd.distill.rationale_words import WORD_SENTENCES, listing, words_rationale  # noqa: E402
from vpd.distill.rationalize import rationalize_run  # noqa: E402
from vpd.tools.specs import TOOLS  # noqa: E402
from vpd.types import Box, Example, ToolCall, Trace  # noqa: E402

BOX_RE = re.compile(r"\d+ \d+ \d+ \d+")
FULL = Box(x0=0, y0=0, x1=128, y1=128)


def _item(calls, answer, question="q?") -> TraceItem:
    ex = Example(id="1", image="/nonexistent.png", question=question, answer=str(answer))
    return TraceItem(example=ex, program="", trace=Trace(calls=tuple(calls), output=answer), answer=answer)


def test_every_registered_tool_has_a_word_form():
    assert set(TOOLS) <= set(WORD_SENTENCES)


def test_detections_are_listed_left_to_right_in_the_find_tasks_words():
    cube = Box(x0=60, y0=10, x1=90, y1=40, label="large red cube")
    sphere = Box(x0=5, y0=50, x1=20, y1=65, label="small red sphere")
    call = ToolCall(tool="detect", args={"query": "red object"}, box=FULL, boxes=(cube, sphere))
    text = words_rationale(_item([call], 2, "How many red objects are there?"))
    assert text == "Find red object: a small red sphere and a large red cube. Thus, the answer is 2."
    # the same words the pretraining task `find` writes for these objects
    objects = [{"size": "large", "color": "red", "shape": "cube", "bbox": [60, 10, 90, 40]},
               {"size": "small", "color": "red", "shape": "sphere", "bbox": [5, 50, 20, 65]}]
    import numpy as np
    pairs = PRETRAIN_TASKS.get("find")(objects, 128, 128, np.random.default_rng(0), 1000)
    red = [s for p, s in pairs if p == "find red object"]
    if red:  # the task samples its phrase; when it picks this one, the words agree exactly
        assert red[0] == listing(call)
    empty = ToolCall(tool="detect", args={"query": "blue cube"}, box=FULL, boxes=())
    assert words_rationale(_item([empty], "no")).startswith("Find blue cube: none.")


def test_a_patch_is_named_by_the_object_found_there_and_no_box_is_cited():
    cube = Box(x0=60, y0=10, x1=90, y1=40, label="large red cube")
    calls = [ToolCall(tool="detect", args={"query": "cube"}, box=FULL, boxes=(cube,)),
             ToolCall(tool="vqa", args={"question": "What color is the object?"}, box=cube, result="red"),
             ToolCall(tool="verify_property", args={"name": "object", "prop": "red"}, box=cube, result=True),
             ToolCall(tool="crop", args={}, box=Box(x0=1, y0=2, x1=3, y1=4), result=[1, 2, 3, 4]),
             ToolCall(tool="detect", args={"query": "sphere"}, error="ToolError: boom")]
    text = words_rationale(_item(calls, "red", "What color is the cube?"))
    assert 'For the large red cube, asked "What color is the object?", the answer is red.' in text
    assert "For the large red cube, the object is red." in text
    assert "Zooming in on a region." in text
    assert "Looking for sphere failed, so it gives no evidence." in text
    assert not BOX_RE.search(text)
    assert text.endswith("Thus, the answer is red.")


def test_words_rationales_of_a_real_run_pass_the_check_and_cite_no_pixels(shapes_run):
    data, run, counts = shapes_run
    rep = rationalize_run(run, rewriter="words", show_progress=False)
    lines = [json.loads(l) for l in (run / "rationales.jsonl").read_text().splitlines()]
    assert len(lines) == counts["passed"] >= 20
    assert rep.rewriter == "words" and rep.fallbacks == 0 and rep.kept == len(lines)
    finds = 0
    for rec in lines:
        assert rec["rewriter"] == "words" and rec["kept"]
        ex = Example.from_dict(rec["example"])
        assert checker_for(ex).check(stated_answer(rec["rationale"]), ex).passed, rec["rationale"]
        assert not BOX_RE.search(rec["rationale"]), rec["rationale"]
        finds += rec["rationale"].startswith("Find ")
    assert finds >= len(lines) // 2  # most shapes programs start with find()


def test_the_checker_still_rejects_a_wrong_answer_in_words():
    call = ToolCall(tool="detect", args={"query": "red cube"}, box=FULL,
                    boxes=(Box(x0=10, y0=20, x1=30, y1=40, label="small red cube"),))
    ex = Example(id="1", image="/x.png", question="How many red cubes are there?", answer="1", qtype="count_simple")
    trace = Trace(calls=(call,), output=1)
    good = words_rationale(TraceItem(example=ex, program="", trace=trace, answer=1))
    assert check_rationale(good, ex, trace).ok
    assert not check_rationale(good.replace("answer is 1", "answer is 2"), ex, trace).ok


@pytest.fixture(scope="module")
def shapes_run(tmp_path_factory):
    return make_shapes_run(tmp_path_factory.mktemp("words"), n=16, seed=11)
