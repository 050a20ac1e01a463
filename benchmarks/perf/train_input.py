"""Student training step with vs without the host input path, for one preset on this machine.

    python -m vpd.benchmarks.perf.train_input [--preset student-s] [--batch 32] [--steps 10] [--rounds 3]

Baseline: ``Trainer.step`` on one batch prepared once (pixels already normalised float32). Measured:
the same step fed by :meth:`MixtureData.batch` each time (row gather from the uint8 image store and
per-step normalisation in numpy), as ``vpd train`` does. Rounds alternate the order; the ratio
(with input / without) per round and its median are printed with the load average (the machine is
shared). The mixture is synthetic: ``--images`` random uint8 images and random token rows with a
``--prefix``/``--suffix`` split.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import numpy as np


def _data(cfg, images: int, rows: int, prefix: int, suffix: int):
    from vpd.distill.vlm_train import MixtureData

    rng = np.random.default_rng(0)
    s, t = cfg.vision.image_size, prefix + suffix
    tokens = rng.integers(5, cfg.text.vocab_size, (rows, t)).astype(np.int32)
    suffix_mask = np.zeros((rows, t), bool)
    suffix_mask[:, prefix:] = True
    return MixtureData(ids=[str(i) for i in range(rows)], tasks=["label"] * rows,
                       images=rng.integers(0, 256, (images, s, s, 3), dtype=np.uint8),
                       image_index=rng.integers(0, images, rows), tokens=tokens, valid=np.ones((rows, t), bool),
                       suffix=suffix_mask, weight=np.ones(rows, np.float32))


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", default="student-s")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--prefix", type=int, default=24)
    ap.add_argument("--suffix", type=int, default=40)
    ap.add_argument("--images", type=int, default=2000)
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args(argv)

    from vpd.distill.vlm_train import batch_rows
    from vpd.distill.vlm_config import preset
    from vpd.distill.vlm_model import build_model, count_params
    from vpd.distill.vlm_train import TrainConfig, Trainer

    cfg = preset(args.preset)
    data = _data(cfg, args.images, 8 * args.batch, args.prefix, args.suffix)
    trainer = Trainer(build_model(cfg), TrainConfig(steps=10_000, batch=args.batch, max_suffix=args.suffix))
    fixed = data.batch(np.arange(args.batch))
    trainer.step(fixed)  # compile
    step = 0

    def timed(fresh: bool) -> float:
        nonlocal step
        t = time.perf_counter()
        for _ in range(args.steps):
            trainer.step(data.batch(batch_rows(len(data), args.batch, step, 0)) if fresh else fixed)
            step += 1
        return (time.perf_counter() - t) / args.steps

    ratios = []
    print(f"{args.preset}: {count_params(trainer.model()):,} params, batch {args.batch}, "
          f"{cfg.num_image_tokens}+{args.prefix + args.suffix} tokens")
    for r in range(args.rounds):
        order = (False, True) if r % 2 == 0 else (True, False)
        res = {fresh: timed(fresh) for fresh in order}
        ratios.append(res[True] / res[False])
        print(f"round {r}: without input {1000 * res[False]:.0f} ms/step, with input {1000 * res[True]:.0f} ms/step, "
              f"ratio {ratios[-1]:.3f} (load {os.getloadavg()[0]:.1f})")
    print(f"median ratio with/without input path: {statistics.median(ratios):.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
