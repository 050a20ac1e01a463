"""Speed (and detection quality) of the ``shapes`` world and its backend.

    python -m vpd.benchmarks.perf.shapes [--quick] [--scenes N] [--seed S] [--difficulty easy,medium,hard]
                                         [--quality-only] [--workers W]

Prints, each with a baseline measured in the same run:

* scenes generated/s (scene + render with texture and noise) vs. the same without noise;
* scenes written/s by ``make_dataset`` with ``--workers`` processes vs. one process (same files);
* detect calls/s of the backend with its per-image memo disabled (every call segments the pixels)
  vs. with the memo (repeated queries on one image, as a program does);
* detection precision / recall / count accuracy over the scenes (IoU >= 0.5 with the true amodal
  box, same colour and shape; count accuracy per (colour, shape) pair present in a scene), one row
  per difficulty level (:mod:`vpd.benchmarks.shapes_difficulty`).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from vpd.benchmarks.shapes import generate_scene, make_dataset, render_scene
from vpd.benchmarks.shapes_difficulty import LEVELS, get_difficulty
from vpd.tools.backends.shapes import ShapesBackend
from vpd.types import Box


def _rate(n: int, seconds: float) -> float:
    return n / seconds if seconds > 0 else float("inf")


def scenes_per_s(seed: int, n: int, noise: bool) -> float:
    t0 = time.perf_counter()
    for i in range(n):
        render_scene(generate_scene(seed, i, noise=noise))
    return _rate(n, time.perf_counter() - t0)


def dataset_scenes_per_s(seed: int, n: int, workers: int) -> float:
    """Scenes per second that :func:`make_dataset` writes (PNG + examples) with ``workers`` processes."""
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        make_dataset(Path(tmp) / "d", n=n, seed=seed, per_image=2, workers=workers)
        return _rate(n, time.perf_counter() - t0)


def detect_calls_per_s(images: list, queries: list[str], cache_size: int) -> float:
    backend = ShapesBackend(cache_size=cache_size)
    t0 = time.perf_counter()
    calls = 0
    for img in images:
        for q in queries:
            backend.detect(img, q)
            calls += 1
    return _rate(calls, time.perf_counter() - t0)


def detection_quality(seed: int, n: int, difficulty: str = "easy") -> dict[str, float]:
    """Precision/recall of all detections (IoU >= 0.5 with the amodal box, same colour and shape) and
    count accuracy per (colour, shape) pair present in a scene, on ``n`` scenes of ``difficulty``."""
    backend = ShapesBackend(cache_size=0)
    tp = n_det = n_gt = pairs = pairs_ok = 0
    for i in range(n):
        scene = generate_scene(seed, i, difficulty=difficulty)
        dets = backend.detect(render_scene(scene), "object")
        truth = [(o, Box(x0=o.bbox[0], y0=o.bbox[1], x1=o.bbox[2], y1=o.bbox[3])) for o in scene.objects]
        used: set[int] = set()
        for d in dets:
            for j, (o, t) in enumerate(truth):
                if j not in used and d.label.endswith(f"{o.color} {o.shape}") and d.iou(t) >= 0.5:
                    used.add(j)
                    tp += 1
                    break
        n_det += len(dets)
        n_gt += len(truth)
        for key in {(o.color, o.shape) for o in scene.objects}:
            pairs += 1
            pairs_ok += (sum((o.color, o.shape) == key for o in scene.objects)
                         == sum(d.label.endswith(" ".join(key)) for d in dets))
    return {"precision": tp / max(1, n_det), "recall": tp / max(1, n_gt), "count_acc": pairs_ok / max(1, pairs),
            "detections": n_det, "objects": n_gt}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a few seconds)")
    ap.add_argument("--scenes", type=int, default=None, help="scenes for each measurement (default 200, quick 30)")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--difficulty", default=",".join(LEVELS), help="levels for the quality table (comma list)")
    ap.add_argument("--quality-only", action="store_true", help="only the detection-quality table")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="processes for the dataset-writing rate (default: all cores)")
    args = ap.parse_args(argv)
    n = args.scenes or (30 if args.quick else 200)
    levels = [d.strip() for d in args.difficulty.split(",") if d.strip()]
    for level in levels:
        get_difficulty(level)  # unknown level -> "did you mean", before any measurement
    if not args.quality_only:
        speed(args.seed, n, args.workers)
    print(f"detection quality on {n} scenes per level (seed {args.seed}; IoU >= 0.5, same colour and shape):")
    print("| difficulty | precision | recall | count accuracy | detections | objects |")
    print("|---|---|---|---|---|---|")
    for level in levels:
        q = detection_quality(args.seed, n, level)
        print(f"| {level} | {q['precision']:.3f} | {q['recall']:.3f} | {q['count_acc']:.3f} | {q['detections']} "
              f"| {q['objects']} |")


def speed(seed: int, n: int, workers: int = os.cpu_count() or 1) -> None:
    """Print the scene, dataset-writing and detect-call rates (each with its baseline)."""
    noisy = scenes_per_s(seed, n, noise=True)
    plain = scenes_per_s(seed, n, noise=False)
    print(f"scenes generated/s (with noise):      {noisy:8.1f}")
    print(f"scenes generated/s (baseline, plain): {plain:8.1f}   ratio noisy/plain = {noisy / plain:.2f}x")
    one = dataset_scenes_per_s(seed, n, workers=1)
    many = dataset_scenes_per_s(seed, n, workers=workers)
    print(f"dataset scenes written/s (baseline, 1 process): {one:8.1f}")
    print(f"dataset scenes written/s ({workers} processes):    {many:8.1f}   ratio = {many / one:.2f}x")

    images = [render_scene(generate_scene(seed, i)) for i in range(min(n, 50))]
    queries = ["red cube", "sphere", "large blue object", "object", "small green things", "cylinders",
               "yellow triangle", "big shapes"]
    uncached = detect_calls_per_s(images, queries, cache_size=0)
    cached = detect_calls_per_s(images, queries, cache_size=64)
    print(f"detect calls/s (baseline, no memo):   {uncached:8.1f}")
    print(f"detect calls/s (per-image memo):      {cached:8.1f}   ratio memo/no-memo = {cached / uncached:.2f}x "
          f"({len(queries)} queries per image)")


if __name__ == "__main__":
    main()
