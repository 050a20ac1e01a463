"""SandboxPool and run_program: ordering, concurrency, images, tools, recycling, errors."""

from __future__ import annotations

import threading

import pytest
from PIL import Image
from sandbox_fake_backend import fake_toolbox

from vpd.sandbox import ExecutionResult, SandboxPool, SandboxUnavailable, run_program
from vpd.tools.toolbox import Toolbox

TRIVIAL = "def execute_command(image):\n    return 1 + 1\n"
SIZE = "def execute_command(image):\n    return list(image.size)\n"
FIND = "def execute_command(image):\n    return len(ImagePatch(image).find('cup'))\n"


@pytest.fixture(scope="module")
def pool():
    with SandboxPool(workers=2, tools=fake_toolbox(), timeout_s=2.0) as p:
        yield p


def test_run_program_default_pool():
    r = run_program(TRIVIAL)
    assert isinstance(r, ExecutionResult) and r.status == "ok" and r.answer == 2


def test_map_keeps_job_order(pool):
    jobs = [f"def execute_command(image):\n    return {i}\n" for i in range(30)]
    assert [r.answer for r in pool.map(jobs)] == list(range(30))


def test_map_accepts_pairs_and_dicts(pool):
    img = Image.new("RGB", (30, 20))
    res = pool.map([(SIZE, img), {"program": SIZE, "image": img}, {"source": TRIVIAL}])
    assert [r.answer for r in res] == [[30, 20], [30, 20], 2]


def test_map_uses_every_worker(pool):
    src = "def execute_command(image):\n    x = 0\n    for i in range(200000):\n        x += i\n    return x\n"
    seen: set[int] = set()
    lock = threading.Lock()
    orig = pool._slots[0].run.__func__

    def spy(slot, *a, **kw):
        with lock:
            seen.add(slot.index)
        return orig(slot, *a, **kw)

    for s in pool._slots:
        s.run = spy.__get__(s)
    try:
        pool.map([src] * 8)
    finally:
        for s in pool._slots:
            del s.run
    assert seen == {0, 1}


def test_image_as_path(pool, tmp_path):
    path = tmp_path / "a.png"
    Image.new("RGB", (17, 9)).save(path)
    assert pool.run(SIZE, image=str(path)).answer == [17, 9]


def test_image_as_registered_id(pool):
    image_id = pool.add_image(Image.new("RGB", (5, 6)))
    assert pool.run(SIZE, image=image_id).answer == [5, 6]


def test_missing_image_is_a_recorded_error(pool):
    r = pool.run(SIZE, image="/nonexistent/x.png")
    assert r.status == "error" and "not found" in r.error


def test_tool_calls_served_and_traced(pool):
    r = pool.run(FIND, image=Image.new("RGB", (40, 40)))
    assert r.answer == 2 and [c.tool for c in r.trace.calls] == ["detect"] and r.trace.output == 2


def test_no_tools_means_clean_runtime_error():
    with SandboxPool(workers=1, tools=Toolbox({})) as p:
        r = p.run(FIND, image=Image.new("RGB", (10, 10)))
    assert r.status == "error" and "ToolCallError" in r.error and "no backend provides tool 'detect'" in r.error


def test_llm_query_without_image_and_tools_is_runtime_error():
    r = run_program("def execute_command(image):\n    return llm_query('capital of France?')\n")
    assert r.status == "error" and "llm_query" in r.error


def test_recycle_after_n_programs():
    with SandboxPool(workers=1, recycle_after=2) as p:
        pids = []
        for _ in range(4):
            p.run(TRIVIAL)
            pids.append(p.worker_pids()[0])
    assert pids[1] != pids[0] and pids[2] == pids[1] and pids[3] != pids[2]


def test_larger_memory_request_gets_fresh_worker():
    with SandboxPool(workers=1, max_memory_mb=512) as p:
        before = p.worker_pids()[0]
        r = p.run("def execute_command(image):\n    return len('a' * (600 * 2 ** 20))\n", memory_mb=1024)
    assert r.answer == 600 * 2 ** 20 and p.worker_pids()[0] != before


def test_memory_limit_applies_per_job(pool):
    r = pool.run("def execute_command(image):\n    return len('a' * (600 * 2 ** 20))\n", memory_mb=300)
    assert r.status == "error" and r.error.startswith("MemoryError")


def test_non_text_source_rejected(pool):
    assert pool.run(b"def execute_command(image): return 1").status == "rejected"


def test_oversized_source_rejected_in_host(pool):
    r = pool.run("x = 1\n" * 50_000)
    assert r.status == "rejected" and "too long" in r.error


def test_syntax_error_is_error_not_rejected(pool):
    r = pool.run("def execute_command(image)\n    return 1\n")
    assert r.status == "error" and r.error.startswith("SyntaxError")


def test_error_reports_program_line(pool):
    r = pool.run("def execute_command(image):\n    x = 1\n    return x / 0\n")
    assert r.error == "ZeroDivisionError: division by zero (line 3)"


def test_broken_interpreter_raises_sandbox_unavailable():
    with pytest.raises(SandboxUnavailable):
        with SandboxPool(workers=1, python="/bin/false", startup_timeout_s=10) as p:
            p.run(TRIVIAL)


def test_closed_pool_refuses_work():
    p = SandboxPool(workers=1)
    p.close()
    with pytest.raises(RuntimeError):
        p.run(TRIVIAL)


def test_result_round_trips_json(pool):
    r = pool.run(FIND, image=Image.new("RGB", (40, 40)))
    assert ExecutionResult.from_json(r.to_json()) == r


def test_augmented_item_assignment_runs(pool):
    src = ("def execute_command(image):\n    counts = {'red': 1}\n    for c in ['red', 'red']:\n"
           "        counts[c] += 1\n    xs = [1, 2]\n    xs[0] *= 5\n    return [counts, xs]\n")
    assert pool.run(src).answer == [{"red": 3}, [5, 2]]
