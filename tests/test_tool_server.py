"""The batching tool server: micro-batches for batchable tools, pass-through for the rest."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from PIL import Image

from vpd.tools.backend import Backend
from vpd.tools.cache import ToolCache
from vpd.tools.errors import ToolError
from vpd.tools.host import ToolHost
from vpd.tools.server import ToolServer
from vpd.tools.toolbox import Toolbox
from vpd.types import Box


class FakeBatchDetector(Backend):
    name = "fakebatch"
    provides = frozenset({"detect", "vqa"})
    batchable = frozenset({"detect"})
    max_batch = 4

    def __init__(self, **options):
        super().__init__(**options)
        self.batches: list[int] = []
        self.single = 0
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()

    def detect(self, image, query):  # never used for batchable calls
        raise AssertionError("detect should be batched")

    def detect_batch(self, images, args):
        with self._lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)
        self.batches.append(len(images))
        out = []
        for im, a in zip(images, args):
            if a["query"] == "bad":
                out.append(ToolError("cannot detect 'bad'"))
            else:
                out.append([Box(x0=0, y0=0, x1=im.width, y1=im.height, label=a["query"])])
        with self._lock:
            self.active -= 1
        return out

    def vqa(self, image, question):
        self.single += 1
        return f"answer to {question}"


def image(i=0):
    return Image.new("RGB", (10 + i, 10), (i, 0, 0))


def test_concurrent_calls_are_batched_up_to_max_batch():
    be = FakeBatchDetector()
    server = ToolServer(Toolbox({"detect": be, "vqa": be}), max_wait_ms=200)
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda i: server.call_json("detect", image(i), query=f"q{i}"), range(8)))
    server.close()
    assert [r[0][0][5] for r in results] == [f"q{i}" for i in range(8)]  # each caller gets its own
    assert [r[0][0][2] for r in results] == [10 + i for i in range(8)]
    assert sum(be.batches) == 8 and max(be.batches) <= 4 and len(be.batches) < 8
    assert server.batch_stats()["detect"]["requests"] == 8


def test_max_batch_cap():
    be = FakeBatchDetector()
    server = ToolServer(Toolbox({"detect": be}), max_wait_ms=100, max_batch=2)
    with ThreadPoolExecutor(6) as pool:
        list(pool.map(lambda i: server.call_json("detect", image(i), query="x"), range(6)))
    server.close()
    assert max(be.batches) <= 2 and sum(be.batches) == 6


def test_one_failing_input_fails_only_its_caller():
    be = FakeBatchDetector()
    server = ToolServer(Toolbox({"detect": be}), max_wait_ms=100)
    with ThreadPoolExecutor(3) as pool:
        futs = [pool.submit(server.call_json, "detect", image(i), query=q) for i, q in enumerate(["a", "bad", "c"])]
    assert futs[0].result()[0][0][5] == "a" and futs[2].result()[0][0][5] == "c"
    with pytest.raises(ToolError, match="bad"):
        futs[1].result()
    server.close()


def test_non_batchable_tools_pass_through():
    be = FakeBatchDetector()
    server = ToolServer(Toolbox({"detect": be, "vqa": be}), max_wait_ms=100)
    assert server.call_json("vqa", image(), question="colour?") == ("answer to colour?", False)
    assert be.single == 1 and be.batches == [] and server.batch_stats() == {}


def test_cache_hits_skip_the_backend():
    be = FakeBatchDetector()
    server = ToolServer(Toolbox({"detect": be}, cache=ToolCache(None)), max_wait_ms=1)
    first = server.call_json("detect", image(), query="cube")
    second = server.call_json("detect", image(), query="cube")
    server.close()
    assert first[1] is False and second == (first[0], True) and sum(be.batches) == 1
    assert server.stats["cache_hits"] == 1 and server.stats["backend_calls"] == 1


def test_backend_never_runs_two_batches_at_once():
    be = FakeBatchDetector()
    server = ToolServer(Toolbox({"detect": be, "vqa": be}), max_wait_ms=5)
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda i: server.call_json("detect", image(i), query="x"), range(40)))
    server.close()
    assert be.max_active == 1


def test_plugs_into_the_tool_host_and_records_traces():
    be = FakeBatchDetector()
    server = ToolServer(Toolbox({"detect": be}), max_wait_ms=1)
    host = ToolHost(server)
    image_id, w, h = host.add_image(image(5))
    reply = host.handle({"tool": "detect", "image_id": image_id, "box": [0, 0, 8, 8], "args": {"query": "cube"}})
    server.close()
    assert reply["ok"] and reply["result"][0][:4] == [0, 0, 8, 8]
    assert host.calls[0].tool == "detect" and host.calls[0].backend == "fakebatch"


class FakeAnalysedDetector(Backend):
    """A fake closed-vocabulary detector: one batched pass per image finds every "object"; queries filter."""

    name = "fakeanalysed"
    version = "1"
    provides = frozenset({"detect", "count"})
    analysed = frozenset({"detect", "count"})
    batchable = frozenset({"detect"})
    max_batch = 8

    def __init__(self, **options):
        super().__init__(**options)
        self.analysed_images: list[int] = []
        self.batches: list[int] = []

    def analyse(self, image):
        raise AssertionError("analyses should be batched")

    def analyse_batch(self, images):
        self.batches.append(len(images))
        self.analysed_images.extend(im.width for im in images)
        return [[["red", 0, 0, im.width, 5], ["blue", 0, 5, im.width, 10]] for im in images]

    @classmethod
    def answer_from(cls, context, tool, analysis, query):
        if query == "bad":
            raise ToolError("cannot detect 'bad'")
        boxes = [Box(x0=r[1], y0=r[2], x1=r[3], y1=r[4], label=r[0]) for r in analysis if r[0] in query]
        return boxes if tool == "detect" else len(boxes)


def test_analysed_tools_share_one_batched_analysis_per_image(tmp_path):
    backend = FakeAnalysedDetector()
    server = ToolServer(Toolbox({"detect": backend, "count": backend}, cache=ToolCache(tmp_path / "t.sqlite")),
                        max_wait_ms=50)
    calls = [(tool, i, q) for i in range(3) for tool in ("detect", "count") for q in ("red", "blue", "red blue")]
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda c: server.call_json(c[0], image(c[1]), query=c[2]), calls))
    server.close()
    assert sorted(backend.analysed_images) == [10, 11, 12]  # one analysis per image, never two
    assert sum(backend.batches) == 3 and len(backend.batches) < 3  # and they travelled in batches
    assert server.stats["backend_calls"] == 3 and server.stats["analysis_hits"] == len(calls) - 3
    for (tool, i, q), (value, _) in zip(calls, results):
        expected = backend.answer(tool, [["red", 0, 0, 10 + i, 5], ["blue", 0, 5, 10 + i, 10]], query=q)
        assert value == (expected if tool == "count" else [[b.x0, b.y0, b.x1, b.y1, b.score, b.label]
                                                           for b in expected])
    assert sum(not cached for _, cached in results) == 3


def test_analysed_answer_error_fails_only_its_call(tmp_path):
    backend = FakeAnalysedDetector()
    server = ToolServer(Toolbox({"detect": backend, "count": backend}, cache=ToolCache(None)), max_wait_ms=1)
    with pytest.raises(ToolError, match="cannot detect 'bad'"):
        server.call_json("detect", image(1), query="bad")
    value, cached = server.call_json("count", image(1), query="red")
    server.close()
    assert (value, cached) == (1, True) and backend.analysed_images == [11]
