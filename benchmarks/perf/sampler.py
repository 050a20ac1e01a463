"""Speed of the in-process transformers sampler, two comparisons on the same model and prompts.

    python -m vpd.benchmarks.perf.sampler [--quick] [--sampler gemma] [--tokens N]

1. Throughput: four real few-shot program prompts (shapes questions, nearest examples) completed
   greedily with ``batch_size=1`` (the baseline) and ``batch_size=4``; generated tokens per second
   (prefill included, i.e. what a synth run sees). No stop strings, so both runs generate the same
   number of tokens (unless the model emits end-of-text).
2. The synth path, seconds per question for k=4 candidates (1 greedy + 3 sampled, the stop strings
   of the prompt): the baseline is the v1 set-up (float32, two requests per question, no pinned
   API prefix), against the current one (``auto`` dtype, greedy row in the sampled batch, the API
   section's KV cache pinned by ``warm``).

``--quick`` uses fewer tokens; ``--sampler transformers:PATH`` measures another local model.
"""

from __future__ import annotations

import argparse
import time

QUESTIONS = [("How many red cubes are there?", None), ("Is the blue sphere left of the green cube?", None),
             ("What color is the cylinder?", ["red", "blue", "green", "cyan"]),
             ("How many yellow objects are right of the purple triangle?", None)]


def measure(sampler, prompts: list[str], max_tokens: int) -> tuple[int, float]:
    t0 = time.perf_counter()
    out = sampler.generate(prompts, n=1, temperature=0.0, max_tokens=max_tokens)
    dt = time.perf_counter() - t0
    errors = [c.error for r in out for c in r if c.error]
    if errors:
        raise RuntimeError(f"sampler failed: {errors[0]}")
    return sum(r[0].completion_tokens for r in out), dt


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description="transformers sampler tokens/s, batch 1 vs batch 4")
    ap.add_argument("--quick", action="store_true", help="fewer tokens (a smoke run)")
    ap.add_argument("--sampler", default="gemma", help="gemma or transformers:PATH")
    ap.add_argument("--tokens", type=int, default=None, help="tokens per completion (default 48, quick 12)")
    args = ap.parse_args(argv)
    from vpd.programs.prompt import PromptBuilder
    from vpd.programs.sampler_base import load_sampler
    from vpd.programs.sampler_transformers import TransformersSampler

    max_tokens = args.tokens or (12 if args.quick else 48)
    t0 = time.perf_counter()
    base = load_sampler(args.sampler, batch_size=1)
    if not isinstance(base, TransformersSampler):
        raise SystemExit("this benchmark measures the in-process transformers sampler")
    print(f"loaded {base.name} in {time.perf_counter() - t0:.1f} s")
    batched = TransformersSampler(base.model, base.tokenizer, name=base.name, batch_size=4)
    builder = PromptBuilder(["detect", "count"], count_tokens=base.count_tokens)
    prompts = [builder.build(q, c).text for q, c in QUESTIONS]
    print(f"{len(prompts)} prompts of ~{sum(map(base.count_tokens, prompts)) // len(prompts)} tokens, "
          f"{max_tokens} new tokens each, greedy")
    measure(batched, prompts[:1], 2)  # warm-up (kernels, allocator)
    n1, t1 = measure(base, prompts, max_tokens)
    n4, t4 = measure(batched, prompts, max_tokens)
    r1, r4 = n1 / t1, n4 / t4
    print(f"batch 1: {n1} tokens in {t1:.1f} s = {r1:.1f} tok/s (baseline)")
    print(f"batch 4: {n4} tokens in {t4:.1f} s = {r4:.1f} tok/s")
    print(f"ratio batch 4 / batch 1: {r4 / r1:.2f}x")
    synth_path(args.sampler, batched, builder, max_tokens=max_tokens * 2)


def synth_path(spec: str, current: "TransformersSampler", builder, *, max_tokens: int, k: int = 4) -> float:
    """Seconds per question, v1 set-up (baseline) vs the current one; returns the speed-up."""
    from vpd.programs.sampler_base import load_sampler
    from vpd.programs.sampling import sample_programs
    from vpd.programs.sampler_transformers import TransformersSampler

    v1 = load_sampler(spec, batch_size=4, dtype="float32")
    v1.mixes_greedy_in_one_request = False  # the v1 loop: a greedy request, then a sampled one

    def v1_generate_k(prompts, **kw):
        return super(TransformersSampler, v1).generate_k(prompts, **kw)

    v1.generate_k = v1_generate_k  # type: ignore[method-assign]
    prompts = [builder.build(q, c) for q, c in QUESTIONS]

    def run(sampler, items) -> float:
        t0 = time.perf_counter()
        rows = sample_programs(sampler, items, k, 0.7, max_tokens=max_tokens, seed=0, greedy_first=True)
        dt = time.perf_counter() - t0
        if any(c.status == "llm_error" for r in rows for c in r):
            raise RuntimeError("sampler failed")
        return dt / len(items)

    run(v1, [prompts[0].text])  # warm-up
    current.warm(prompts[0].cache_prefix)  # once per run in synth; not part of the per-question cost
    base_s = run(v1, [p.text for p in prompts])  # plain strings: no warm hint (v1 had none)
    cur_s = run(current, prompts)  # Prompt objects: warm() pins the API section first
    print(f"synth path, k={k} per question: v1 (float32, 2 requests, no pinned prefix) {base_s:.1f} s/question "
          f"(baseline); current ({current.dtype}, 1 request, pinned API prefix) {cur_s:.1f} s/question")
    print(f"ratio v1 / current seconds per question: {base_s / cur_s:.2f}x")
    return base_s / cur_s


if __name__ == "__main__":
    main()
