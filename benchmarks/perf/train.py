"""Student speed: training throughput of our Flax PaliGemma vs transformers' PyTorch one, and
decoding with vs without the KV cache.

    python -m vpd.benchmarks.perf.train [--quick] [--preset tiny] [--batch 16] [--steps 10]

Both trainers get the same config (``--preset``, built for transformers with
``vpd.distill.vlm_import.to_hf_config``), batch, sequence (image tokens + ``--prefix`` text
tokens + ``--suffix`` target tokens), AdamW and loss on the suffix only, on this CPU, in one run.
Compilation / warm-up steps are excluded. Prints examples/s of each and the ratio ours/torch, then
greedy decoding tokens/s with the cache (``lax.while_loop`` + KV cache) and without (the whole
sequence recomputed each step), and their ratio.
"""

from __future__ import annotations

import argparse
import json
import os
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


def time_flax(cfg, batch: dict, steps: int, warmup: int = 2) -> float:
    from vpd.distill.vlm_model import build_model
    from vpd.distill.vlm_train import Trainer, TrainConfig

    trainer = Trainer(build_model(cfg), TrainConfig(batch=len(batch["tokens"]), steps=steps + warmup, lr=1e-4,
                                                    warmup_steps=0))
    for _ in range(warmup):
        trainer.step(batch)
    t = time.perf_counter()
    for _ in range(steps):
        trainer.step(batch)  # returns floats, so every step is synchronised
    return len(batch["tokens"]) * steps / (time.perf_counter() - t)


def time_torch(cfg, batch: dict, steps: int, warmup: int = 2) -> float:
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

    def step():
        opt.zero_grad(set_to_none=True)
        loss = model(input_ids=ids, pixel_values=pixels, attention_mask=mask, token_type_ids=tt, labels=labels).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        return float(loss)

    for _ in range(warmup):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return b * steps / (time.perf_counter() - t)


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
    ap.add_argument("--quick", action="store_true", help="fewer steps and tokens (about a minute on 2 cores)")
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--prefix", type=int, default=24, help="text prefix tokens (bos + prompt)")
    ap.add_argument("--suffix", type=int, default=24, help="target tokens")
    ap.add_argument("--steps", type=int, default=10)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--json", default=None, help="also write the numbers to this file")
    args = ap.parse_args(argv)
    if args.quick:
        args.steps, args.new_tokens = 4, 16

    from vpd.distill.vlm_config import preset

    cfg = preset(args.preset)
    batch = _batch(cfg, args.batch, args.prefix, args.suffix)
    seq = cfg.num_image_tokens + args.prefix + args.suffix
    print(f"preset {args.preset}: batch {args.batch}, sequence {seq} tokens "
          f"({cfg.num_image_tokens} image + {args.prefix} prefix + {args.suffix} suffix), {args.steps} timed steps")
    ours = time_flax(cfg, batch, args.steps)
    print(f"  flax (ours, jit)          {ours:8.1f} examples/s")
    ref = time_torch(cfg, batch, args.steps)
    print(f"  transformers (PyTorch)    {ref:8.1f} examples/s")
    print(f"  training speed ratio ours/torch: {ours / ref:.2f}x")
    b = min(args.batch, 8)
    cached = time_decode(cfg, b, args.prefix, args.new_tokens, True)
    nocache = time_decode(cfg, b, args.prefix, args.new_tokens, False)
    print(f"decoding (greedy, batch {b}, {args.new_tokens} new tokens): with KV cache {cached:.1f} tok/s, "
          f"without {nocache:.1f} tok/s -> cache speed-up {cached / nocache:.2f}x")
    if args.json:
        with open(args.json, "w") as fh:
            json.dump({"train_examples_per_s": {"flax": ours, "torch": ref, "ratio": ours / ref},
                       "decode_tokens_per_s": {"cache": cached, "no_cache": nocache, "ratio": cached / nocache},
                       "config": vars(args)}, fh, indent=2)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
