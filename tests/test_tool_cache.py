"""ToolCache: LRU + SQLite, shared across toolboxes and processes, plugged into Toolbox."""

from __future__ import annotations

import multiprocessing as mp
import pickle
import threading

from PIL import Image

from vpd.tools.backend import Backend
from vpd.tools.cache import ToolCache, open_cache
from vpd.tools.toolbox import Toolbox


class FakeDetector(Backend):
    name = "fakedet"
    version = "1"
    provides = frozenset({"detect", "vqa"})

    def __init__(self, **options):
        super().__init__(**options)
        self.calls = 0

    def detect(self, image, query):
        from vpd.types import Box
        self.calls += 1
        return [Box(x0=1, y0=2, x1=3, y1=4, score=0.9, label=query)]

    def vqa(self, image, question):
        self.calls += 1
        return "red"


def img(color=(255, 0, 0)):
    return Image.new("RGB", (16, 16), color)


def test_memory_hit_and_stats():
    c = ToolCache(None)
    assert c.get("k") is None
    c.put("k", [1, 2])
    assert c.get("k") == [1, 2]
    s = c.stats()
    assert (s.hits, s.misses, s.puts, s.memory_hits) == (1, 1, 1, 1)
    assert s.hit_rate == 0.5


def test_false_and_zero_results_are_cached():
    c = ToolCache(None)
    c.put("a", False)
    c.put("b", 0)
    assert c.get("a") is False and c.get("b") == 0


def test_lru_evicts_oldest():
    c = ToolCache(None, capacity=2)
    c.put("a", 1); c.put("b", 2); c.get("a"); c.put("c", 3)
    assert c.get("b") is None and c.get("a") == 1 and c.get("c") == 3


def test_disk_store_shared_across_instances(tmp_path):
    p = tmp_path / "tools.sqlite"
    ToolCache(p).put("k", {"x": [1, "a"]})
    other = ToolCache(p)
    assert other.get("k") == {"x": [1, "a"]}
    assert other.stats().disk_hits == 1 and len(other) == 1


def test_toolbox_uses_cache_across_runs(tmp_path):
    p = tmp_path / "tools.sqlite"
    be = FakeDetector()
    tb = Toolbox({"detect": be, "vqa": be}, cache=ToolCache(p))
    r1, cached1 = tb.call_json("detect", img(), query="red cube")
    r2, cached2 = tb.call_json("detect", img(), query="red cube")  # same call: same key
    assert r1 == r2 and (cached1, cached2) == (False, True) and be.calls == 1
    # this backend echoes the query as the box label and declares no normalisation, so a
    # differently spelled query must not be served the cached (differently labelled) result
    r3, cached3 = tb.call_json("detect", img(), query="Red  Cube")
    assert not cached3 and r3[0][5] == "Red  Cube" and be.calls == 2
    tb.call_json("detect", img((0, 0, 255)), query="red cube")  # other pixels: a miss
    assert be.calls == 3
    be2 = FakeDetector()
    tb2 = Toolbox({"detect": be2, "vqa": be2}, cache=ToolCache(p))  # a new run, same store
    assert tb2.call_json("detect", img(), query="red cube") == (r1, True) and be2.calls == 0


def test_backend_version_is_part_of_the_key(tmp_path):
    p = tmp_path / "tools.sqlite"
    be = FakeDetector()
    Toolbox({"vqa": be}, cache=ToolCache(p)).call_json("vqa", img(), question="colour?")

    class FakeDetectorV2(FakeDetector):
        version = "2"

    be2 = FakeDetectorV2()
    Toolbox({"vqa": be2}, cache=ToolCache(p)).call_json("vqa", img(), question="colour?")
    assert be2.calls == 1


def test_threads_share_one_cache(tmp_path):
    c = ToolCache(tmp_path / "t.sqlite")
    errors = []

    def work(t):
        try:
            for i in range(50):
                c.put(f"{t}-{i}", i)
                assert c.get(f"{t}-{i}") == i
        except Exception as exc:  # pragma: no cover - reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    [t.start() for t in threads]
    [t.join() for t in threads]
    assert not errors and len(c) == 200


def _writer(path, start):
    c = ToolCache(path)
    for i in range(start, start + 100):
        c.put(f"k{i}", i)


def test_processes_write_concurrently(tmp_path):
    p = tmp_path / "t.sqlite"
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(p, s)) for s in (0, 100, 200)]
    [pr.start() for pr in procs]
    [pr.join(60) for pr in procs]
    assert all(pr.exitcode == 0 for pr in procs)
    c = ToolCache(p)
    assert len(c) == 300 and c.get("k250") == 250


def test_pickles_and_reopens(tmp_path):
    c = ToolCache(tmp_path / "t.sqlite")
    c.put("k", 1)
    c2 = pickle.loads(pickle.dumps(c))
    assert c2.get("k") == 1


def test_unusable_path_degrades_to_memory(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    c = ToolCache(blocker / "sub" / "t.sqlite")  # parent is a file: cannot create
    c.put("k", 1)
    assert c.get("k") == 1


def test_open_cache_specs(tmp_path, monkeypatch):
    monkeypatch.setenv("VPD_CACHE_DIR", str(tmp_path))
    assert open_cache("off") is None
    assert open_cache("memory").path is None
    assert open_cache(None).path == tmp_path / "tools.sqlite"
    assert open_cache(str(tmp_path / "x.sqlite")).path == tmp_path / "x.sqlite"
