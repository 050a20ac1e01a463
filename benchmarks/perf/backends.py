"""Throughput of a transformers backend batched vs one by one, and the tool-cache speed-up.

    python -m vpd.benchmarks.perf.backends [--quick] [--backend owlv2|clip|blip2|depth_anything] [--n N]

Uses a tiny random-init checkpoint built offline (see :mod:`vpd.tools.tiny_models`), so it runs on
any CPU; on a GPU with real checkpoints pass ``--model-path``. Prints, each against a baseline
measured in the same run:

* calls/s of ``<tool>_batch`` (micro-batches of the backend's ``max_batch``) vs. one call per input;
* calls/s of a toolbox with the SQLite tool cache on a second pass (all hits) vs. the first pass
  (all misses, which run the model and fill the cache).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

#: backend -> (tool, tiny kind, args for input i)
CASES = {
    "owlv2": ("detect", "owlv2", lambda i: {"query": ["cat", "red car", "person", "dog"][i % 4]}),
    "clip": ("best_text_match", "clip", lambda i: {"options": ["cat", "dog", "red car"]}),
    "blip2": ("vqa", "blip2", lambda i: {"question": ["what is this?", "how many cats?"][i % 2]}),
    "depth_anything": ("depth", "depth_anything", lambda i: {}),
}


def _images(n: int, size: int) -> list[Image.Image]:
    rng = np.random.RandomState(0)
    return [Image.fromarray(rng.randint(0, 255, (size, size, 3), dtype=np.uint8)) for _ in range(n)]


def run(backend: str, n: int, model_path: str | None, size: int) -> dict[str, float]:
    from vpd.tools import load
    from vpd.tools.cache import ToolCache
    from vpd.tools.tiny_models import make_tiny

    tool, kind, make_args = CASES[backend]
    with tempfile.TemporaryDirectory() as tmp:
        path = model_path or str(make_tiny(kind, Path(tmp) / kind))
        opts = {"backend": backend, "model_path": path}
        if backend == "blip2":
            opts["max_new_tokens"] = 8
        be = load({tool: opts}).backends[tool]
        images = _images(n, size)
        args = [make_args(i) for i in range(n)]
        be.run(tool, images[0], **args[0])  # warm-up
        t0 = time.perf_counter()
        one = [be.run(tool, im, **a) for im, a in zip(images, args)]
        t_one = time.perf_counter() - t0
        t0 = time.perf_counter()
        batch = be.run_batch(tool, images, args)
        t_batch = time.perf_counter() - t0
        same = sum(_same(a, b) for a, b in zip(one, batch))

        cache = ToolCache(Path(tmp) / "tools.sqlite")
        tb = load({tool: opts}, cache=cache)
        t0 = time.perf_counter()
        for im, a in zip(images, args):
            tb.call_json(tool, im, **a)
        t_miss = time.perf_counter() - t0
        t0 = time.perf_counter()
        hits = sum(tb.call_json(tool, im, **a)[1] for im, a in zip(images, args))
        t_hit = time.perf_counter() - t0
    return {"n": n, "max_batch": be.max_batch, "one_per_s": n / t_one, "batch_per_s": n / t_batch,
            "batch_speedup": t_one / t_batch, "batch_equal": same, "miss_per_s": n / t_miss,
            "hit_per_s": n / t_hit, "cache_speedup": t_miss / t_hit, "hits": hits}


def _same(a, b) -> bool:
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(x.label == y.label and abs(x.x0 - y.x0) < 1e-2 for x, y in zip(a, b))
    if isinstance(a, float):
        return abs(a - b) <= 1e-4 * max(1.0, abs(a))
    return a == b


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--quick", action="store_true", help="16 inputs instead of 64")
    p.add_argument("--backend", default="owlv2", choices=sorted(CASES))
    p.add_argument("--n", type=int, default=None)
    p.add_argument("--size", type=int, default=96, help="input image side in pixels")
    p.add_argument("--model-path", default=None, help="a real checkpoint instead of the tiny random one")
    a = p.parse_args(argv)
    n = a.n or (16 if a.quick else 64)
    r = run(a.backend, n, a.model_path, a.size)
    tool = CASES[a.backend][0]
    print(f"backend {a.backend} ({tool}), {r['n']} inputs, max_batch {r['max_batch']}, CPU" if not a.model_path
          else f"backend {a.backend} ({tool}) with {a.model_path}, {r['n']} inputs")
    print(f"  one by one : {r['one_per_s']:8.1f} calls/s   (baseline)")
    print(f"  batched    : {r['batch_per_s']:8.1f} calls/s   x{r['batch_speedup']:.2f}   "
          f"({r['batch_equal']}/{r['n']} results equal to one-by-one)")
    print(f"  cache miss : {r['miss_per_s']:8.1f} calls/s   (baseline: first pass, fills the cache)")
    print(f"  cache hit  : {r['hit_per_s']:8.1f} calls/s   x{r['cache_speedup']:.1f}   ({r['hits']}/{r['n']} hits)")


if __name__ == "__main__":
    main()
