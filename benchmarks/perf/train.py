"""Student speed: training throughput of our Flax PaliGemma vs transformers' PyTorch one, and
decoding with vs without the KV cache.

    python -m vpd.benchmarks.perf.train [--quick] [--preset tiny] [--batch 16] [--rounds 5] [--steps 5]

Fairness: both trainers get the same config (``--preset``, built for transformers with
``vpd.distill.vlm_import.to_hf_config``), batch, sequence (image tokens + ``--prefix`` text tokens
+ ``--suffix`` target tokens), AdamW with global-norm clipping and the loss on the suffix only, on
the same cores (``--threads N`` pins to N cores, default all; torch gets ``set_num_threads(N)`` and
``OMP_WAIT_POLICY=PASSIVE``, XLA sizes its pool from the same affinity) and the same host-allocator
settings (:mod:`vpd.distill.vlm_host_memory`; ``--no-keep-host-memory`` measures without). Each
side lives in its own worker process (one framework's idle threads never share the cores with the
other's timed steps), builds its model and runs ``--warmup`` untimed steps (compilation, allocator
warm-up); then ``--rounds`` rounds alternate which side goes first and time ``--steps`` steps each,
every step ending with the loss on the host (``float(loss)``) on both sides. The machine is shared,
so the per-round ratio ours/torch is printed with its median, the load average and the minor page
faults per step.

Then greedy decoding tokens/s with the cache (``lax.while_loop`` + KV cache) and without (the whole
sequence recomputed each step), and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import time

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _batch(cfg, b: int, prefix: int, suffix: int, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    t = prefix + suffix
    s = cfg.vision.image_size
    tokens = rng.integers(5, cfg.text.vocab_size, (b, t)).astype(np.int32)
    tokens[:, 0] = cfg.bos_id
    suffix_mask = np.zeros((b, t), bool)
    suffix_mask[:, prefix:] = True
    return {"pixels": rng.uniform(-1, 1, (b, s, s, 3)).astype(np.float32), "tokens": tokens,
            "valid": np.ones((b, t), bool), "suffix": suffix_mask, "weight": np.ones(b, np.float32)}


def flax_step(cfg, batch: dict, max_suffix: int):
    """Our trainer (one jitted update, donated state); the returned step ends with the loss on the host."""
    from vpd.distill.vlm_model import build_model
    from vpd.distill.vlm_train import Trainer, TrainConfig

    b, t = batch["tokens"].shape
    trainer = Trainer(build_model(cfg), TrainConfig(batch=b, steps=10_000, lr=1e-4, warmup_steps=0,
                                                    max_prefix=t - max_suffix, max_suffix=max_suffix))
    return lambda: trainer.step(batch)["loss"]


def torch_step(cfg, batch: dict):
    """transformers' PaliGemma with the same config, batch, AdamW + clipping, loss on the suffix."""
    import torch
    from transformers import PaliGemmaForConditionalGeneration

    from vpd.distill.vlm_import import to_hf_config

    torch.manual_seed(0)
    model = PaliGemmaForConditionalGeneration(to_hf_config(cfg)).train()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4, weight_decay=1e-4)
    b, _ = batch["tokens"].shape
    n = cfg.num_image_tokens
    ids = torch.tensor(np.concatenate([np.full((b, n), cfg.image_token_id), batch["tokens"]], 1), dtype=torch.long)
    tt = torch.tensor(np.concatenate([np.zeros((b, n), bool), batch["suffix"]], 1).astype(np.int64))
    labels = ids.clone()
    labels[tt == 0] = -100
    pixels = torch.tensor(batch["pixels"].transpose(0, 3, 1, 2))
    mask = torch.ones_like(ids)

    def step() -> float:
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, pixel_values=pixels, attention_mask=mask, token_type_ids=tt, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return float(loss.detach())

    return step


def timed(step, steps: int) -> tuple[float, float]:
    """(seconds, minor page faults) for ``steps`` calls of ``step``."""
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return time.perf_counter() - t, resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults


def _worker(side: str, spec: dict, conn) -> None:
    """One side in its own process: build, warm up, then time ``n`` steps whenever asked."""
    if spec["keep_host_memory"]:
        from vpd.distill.vlm_host_memory import keep_freed_host_memory

        keep_freed_host_memory()
    if side == "torch":
        # Sleep, don't spin, at OpenMP barriers: on a shared machine a spinning thread waits for a
        # descheduled partner and torch's step slows several-fold (a stronger, steadier baseline).
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        import torch

        torch.set_num_threads(spec["threads"])
    from vpd.distill.vlm_config import preset

    cfg = preset(spec["preset"])
    batch = _batch(cfg, spec["batch"], spec["prefix"], spec["suffix"])
    step = flax_step(cfg, batch, spec["suffix"]) if side == "flax" else torch_step(cfg, batch)
    for _ in range(spec["warmup"]):
        step()
    conn.send("ready")
    while (n := conn.recv()) is not None:
        conn.send(timed(step, n))
    conn.close()


def compare_training(spec: dict, rounds: int, steps: int, pause: float = 1.0) -> dict:
    """Alternating timing rounds of the two sides, each in its own worker process.

    Separate processes keep one framework's idle worker threads (OpenMP / XLA pools spin for a while
    after each op) from stealing the cores while the other side is timed; ``pause`` seconds before
    each timed block let the previous side's threads go to sleep.
    """
    import multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs, conns = {}, {}
    for side in ("flax", "torch"):  # built and warmed up one after the other
        conns[side], child = ctx.Pipe()
        procs[side] = ctx.Process(target=_worker, args=(side, spec, child), daemon=True)
        procs[side].start()
        if conns[side].recv() != "ready":
            raise RuntimeError(f"{side} worker failed to start")
    b = spec["batch"]
    rates: dict[str, list[float]] = {k: [] for k in procs}
    faults: dict[str, list[float]] = {k: [] for k in procs}
    ratios = []
    try:
        for r in range(rounds):
            for side in (("flax", "torch") if r % 2 == 0 else ("torch", "flax")):
                time.sleep(pause)
                conns[side].send(steps)
                dt, nflt = conns[side].recv()
                rates[side].append(b * steps / dt)
                faults[side].append(nflt / steps)
            ratios.append(rates["flax"][-1] / rates["torch"][-1])
            print(f"  round {r + 1}/{rounds}: flax {rates['flax'][-1]:7.1f} ex/s  torch {rates['torch'][-1]:7.1f} "
                  f"ex/s  ratio {ratios[-1]:.2f}x  (load {os.getloadavg()[0]:.1f})", flush=True)
    finally:
        for side, proc in procs.items():
            if proc.is_alive():
                conns[side].send(None)
            proc.join(timeout=30)
    return {"flax": statistics.median(rates["flax"]), "torch": statistics.median(rates["torch"]),
            "ratio": statistics.median(ratios), "ratios": ratios, "rounds": rates,
            "page_faults_per_step": {k: statistics.median(v) for k, v in faults.items()}}


def time_decode(cfg, b: int, prefix: int, new: int, use_cache: bool, repeats: int = 2) -> float:
    from vpd.distill.vlm_decode import SamplingConfig, generate
    from vpd.distill.vlm_model import build_model

    model = build_model(cfg.replace(eos_id=-1))  # never stops early: every row decodes `new` tokens
    batch = _batch(cfg, b, prefix, 0)
    sc = SamplingConfig(max_new_tokens=new)
    generate(model, batch["pixels"], batch["tokens"], batch["valid"], sc, use_cache=use_cache)  # compile
    t = time.perf_counter()
    for _ in range(repeats):
        generate(model, batch["pixels"], batch["tokens"], batch["valid"], sc, use_cache=use_cache)
    return b * new * repeats / (time.perf_counter() - t)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="3 rounds of 3 steps, 16 new tokens (~1-2 min on 2 cores)")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--prefix", type=int, default=24, help="text prefix tokens (bos + prompt)")
    ap.add_argument("--suffix", type=int, default=24, help="target tokens")
    ap.add_argument("--rounds", type=int, default=5, help="alternating timing rounds (median reported)")
    ap.add_argument("--steps", type=int, default=5, help="timed steps per side per round")
    ap.add_argument("--warmup", type=int, default=3, help="untimed steps per side (compilation)")
    ap.add_argument("--threads", type=int, default=None, help="pin the process to this many cores (default: all)")
    ap.add_argument("--no-keep-host-memory", action="store_true",
                    help="leave glibc malloc at its defaults (see vpd.distill.vlm_host_memory)")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--no-decode", action="store_true", help="skip the decoding measurement")
    ap.add_argument("--json", default=None, help="also write the numbers to this file")
    args = ap.parse_args(argv)
    if args.quick:
        args.rounds, args.steps, args.new_tokens = 3, 3, 16

    # Process-wide settings first (inherited by both workers), before any thread pool starts.
    if args.threads:
        os.sched_setaffinity(0, sorted(os.sched_getaffinity(0))[: args.threads])
    threads = len(os.sched_getaffinity(0))
    kept = not args.no_keep_host_memory
    from vpd.distill.vlm_config import preset

    cfg = preset(args.preset)
    seq = cfg.num_image_tokens + args.prefix + args.suffix
    load0 = os.getloadavg()
    print(f"preset {args.preset}: batch {args.batch}, sequence {seq} tokens ({cfg.num_image_tokens} image + "
          f"{args.prefix} prefix + {args.suffix} suffix); {threads} core(s) for both (torch threads = XLA pool = "
          f"{threads}); host memory kept: {kept}; {args.rounds} rounds x {args.steps} steps after "
          f"{args.warmup} warm-up, one worker process per side; load average {load0[0]:.1f}", flush=True)
    spec = {"preset": args.preset, "batch": args.batch, "prefix": args.prefix, "suffix": args.suffix,
            "warmup": args.warmup, "threads": threads, "keep_host_memory": kept}
    res = compare_training(spec, args.rounds, args.steps)
    load1 = os.getloadavg()
    pf = res["page_faults_per_step"]
    print(f"  flax (ours, jit)          {res['flax']:8.1f} examples/s (median)  {pf['flax']:8.0f} page faults/step")
    print(f"  transformers (PyTorch)    {res['torch']:8.1f} examples/s (median)  {pf['torch']:8.0f} page faults/step")
    print(f"  training speed ratio ours/torch: {res['ratio']:.2f}x (median of {args.rounds} rounds, "
          f"range {min(res['ratios']):.2f}-{max(res['ratios']):.2f}; load average {load1[0]:.1f})")
    out = {"train_examples_per_s": res, "threads": threads, "keep_host_memory": kept,
           "load_average": [load0[0], load1[0]], "config": vars(args)}
    if not args.no_decode:
        b = min(args.batch, 8)
        cached = time_decode(cfg, b, args.prefix, args.new_tokens, True)
        nocache = time_decode(cfg, b, args.prefix, args.new_tokens, False)
        print(f"decoding (greedy, batch {b}, {args.new_tokens} new tokens): with KV cache {cached:.1f} tok/s, "
              f"without {nocache:.1f} tok/s -> cache speed-up {cached / nocache:.2f}x")
        out["decode_tokens_per_s"] = {"cache": cached, "no_cache": nocache, "ratio": cached / nocache}
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(out, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
