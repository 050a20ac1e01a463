"""Sandbox speed: the warm worker pool vs a fresh interpreter per program, measured in one run.

    python -m vpd.benchmarks.perf.sandbox [--quick] [--n 300] [--fresh 20] [--workers 2]

Three numbers per mode, for a trivial program (``return 1 + 1``) and a tool-calling program on the
real ``shapes`` backend (find + simple_query on a generated scene):

* sequential latency p50 / p99 (one ``run`` after another, ms, wall clock in the caller);
* throughput, programs/s, with ``map`` across ``--workers`` workers.

The baseline is the same sandbox with a fresh worker process for every program
(``recycle_after=1``, waiting for the new interpreter before each run), i.e. what a "spawn a
locked-down python per program" sandbox costs. Goal: >= 20x faster, trivial p50 < 5 ms.
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

TRIVIAL = "def execute_command(image):\n    return 1 + 1\n"
TOOLS = ("def execute_command(image):\n    image_patch = ImagePatch(image)\n"
         "    patches = image_patch.find('object')\n"
         "    return [p.simple_query('What color is this?') for p in patches[:2]]\n")


def _pct(xs: list[float], q: float) -> float:
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(q * (len(xs) - 1))))]


def _latencies(pool: Any, source: str, image: Any, n: int, fresh: bool) -> list[float]:
    out = []
    for _ in range(n):
        if fresh:  # the baseline: a new interpreter for this program, started in the timed region
            slot = pool._slots[0]
            t0 = time.perf_counter()
            slot.replace()
            r = pool.run(source, image=image)
        else:
            t0 = time.perf_counter()
            r = pool.run(source, image=image)
        out.append((time.perf_counter() - t0) * 1000.0)
        if r.status != "ok":
            raise RuntimeError(f"benchmark program failed: {r.status} {r.error}")
    return out


def _throughput(pool: Any, source: str, image: Any, n: int) -> float:
    t0 = time.perf_counter()
    results = pool.map([{"source": source, "image": image}] * n)
    dt = time.perf_counter() - t0
    bad = [r for r in results if r.status != "ok"]
    if bad:
        raise RuntimeError(f"benchmark program failed: {bad[0].status} {bad[0].error}")
    return n / dt


def measure(n: int, n_fresh: int, workers: int) -> dict[str, Any]:
    from rich.progress import Progress

    from vpd.benchmarks.shapes import generate_scene, render_scene
    from vpd.sandbox import SandboxPool

    image = render_scene(generate_scene(seed=0, index=3))
    out: dict[str, Any] = {}
    with Progress(transient=True) as progress:
        task = progress.add_task("sandbox benchmark", total=8)
        with SandboxPool(workers=1, tools="shapes") as warm1, \
                SandboxPool(workers=1, tools="shapes", recycle_after=1) as fresh1, \
                SandboxPool(workers=workers, tools="shapes") as warm_n, \
                SandboxPool(workers=workers, tools="shapes", recycle_after=1) as fresh_n:
            image_ids = {id(p): p.add_image(image) for p in (warm1, fresh1, warm_n, fresh_n)}
            for name, source in (("trivial", TRIVIAL), ("tools", TOOLS)):
                img = None if name == "trivial" else image
                w_img = img and image_ids[id(warm1)]
                f_img = img and image_ids[id(fresh1)]
                _latencies(warm1, source, w_img, 20, fresh=False)  # warm-up (code cache, tool cache)
                warm = _latencies(warm1, source, w_img, n, fresh=False)
                progress.advance(task)
                cold = _latencies(fresh1, source, f_img, n_fresh, fresh=True)
                progress.advance(task)
                tput_warm = _throughput(warm_n, source, img and image_ids[id(warm_n)], n)
                progress.advance(task)
                tput_fresh = _throughput(fresh_n, source, img and image_ids[id(fresh_n)], n_fresh)
                progress.advance(task)
                out[name] = {
                    "warm_p50_ms": statistics.median(warm), "warm_p99_ms": _pct(warm, 0.99),
                    "fresh_p50_ms": statistics.median(cold), "fresh_p99_ms": _pct(cold, 0.99),
                    "warm_programs_per_s": tput_warm, "fresh_programs_per_s": tput_fresh,
                    "latency_speedup": statistics.median(cold) / statistics.median(warm),
                    "throughput_speedup": tput_warm / tput_fresh,
                }
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="fewer programs (about 15 s)")
    ap.add_argument("--n", type=int, default=300, help="programs per warm measurement")
    ap.add_argument("--fresh", type=int, default=20, help="programs per fresh-interpreter measurement")
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    n, n_fresh = (60, 8) if args.quick else (args.n, args.fresh)
    res = measure(n, n_fresh, args.workers)
    print(f"{'program':8s} {'mode':6s} {'p50 ms':>8s} {'p99 ms':>8s} {'programs/s':>11s}")
    for name, r in res.items():
        print(f"{name:8s} {'warm':6s} {r['warm_p50_ms']:8.2f} {r['warm_p99_ms']:8.2f} {r['warm_programs_per_s']:11.1f}")
        print(f"{name:8s} {'fresh':6s} {r['fresh_p50_ms']:8.2f} {r['fresh_p99_ms']:8.2f} {r['fresh_programs_per_s']:11.1f}")
        print(f"{name:8s} speed-up vs fresh interpreter: latency {r['latency_speedup']:.1f}x, "
              f"throughput {r['throughput_speedup']:.1f}x ({args.workers} workers)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
