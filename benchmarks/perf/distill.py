"""Distillation-data speed: critic scoring batched vs one by one, and rationale throughput.

    python -m vpd.benchmarks.perf.distill [--quick] [--llm gemma]

Builds a shapes dataset, verbalises its images with the real ``shapes`` tools, makes verbaliser
triples, trains a critic on their scene labels, then times

* critic scoring of all triples in one batched call vs one call per triple (ratio = speed-up);
* the template rewriter + check (rationales/s) on real traces of programs run on the same images;
  with ``--llm SPEC`` also the LLM rewriter, as a ratio against the template.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="small sizes (a minute on 2 cores)")
    ap.add_argument("--llm", default=None, help="also time the llm rewriter with this sampler spec")
    args = ap.parse_args(argv)
    n_images = 6 if args.quick else 30

    from vpd.benchmarks.shapes import make_dataset
    from vpd.datasets import read_examples
    from vpd.distill.critic import MiniLMEmbedder, train_critic
    from vpd.distill.lskd_run import label_all
    from vpd.distill.lskd_templates import perturbed_triples, verbaliser_triples
    from vpd.distill.shapes_labels import VOCAB, scenes_by_image
    from vpd.distill.verbalize import verbalise
    from vpd.tools import load

    tmp = Path(tempfile.mkdtemp(prefix="vpd-perf-distill-"))
    make_dataset(tmp / "data", n=n_images, seed=123)
    examples, _ = read_examples(tmp / "data")
    tb = load("shapes")
    verbs = {}
    for ex in examples:
        if ex.image not in verbs:
            verbs[ex.image] = verbalise(ex.image, tb)
    triples = []
    for v in verbs.values():
        base = verbaliser_triples(v, per_image=6)
        triples += base + perturbed_triples(v, base, VOCAB)
    triples = label_all(triples, verbs, scenes_by_image(examples))
    emb = MiniLMEmbedder()
    critic, metrics, _ = train_critic(triples, verbs, embedder=emb)
    print(metrics.line())
    sample = triples[: (24 if args.quick else 120)]
    critic.score(sample[:2], verbs)  # warm-up (model load)
    t0 = time.perf_counter()
    critic.score(sample, verbs)
    batched = time.perf_counter() - t0
    t0 = time.perf_counter()
    for t in sample:
        critic.score([t], verbs)
    single = time.perf_counter() - t0
    print(f"critic scoring, {len(sample)} triples: batched {len(sample) / batched:.1f}/s, one by one "
          f"{len(sample) / single:.1f}/s -> batched/one-by-one speed ratio {single / batched:.2f}x")

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))
    try:
        from distill_fixtures import make_shapes_run
    except ImportError:
        print("rationale timing skipped: tests/distill_fixtures.py not found (run from a source checkout)")
        return 0
    from vpd.distill.rationale import LLMRewriter, TemplateRewriter, TraceItem
    from vpd.distill.rationale_check import check_rationale
    from vpd.distill.run_io import read_verified

    _, run, _ = make_shapes_run(tmp / "synth", n=n_images, seed=7)
    items = [TraceItem(example=v.example, program=v.candidate.program or "", trace=v.candidate.trace,
                       answer=v.candidate.answer) for v in read_verified(run)]
    reps = 20 if args.quick else 100
    t0 = time.perf_counter()
    for _ in range(reps):
        for it, out in zip(items, TemplateRewriter().rewrite(items)):
            check_rationale(out.text or "", it.example, it.trace, program_answer=it.answer)
    tmpl = (time.perf_counter() - t0) / (reps * len(items))
    print(f"template rewriter + check: {1 / tmpl:.0f} rationales/s ({len(items)} real traces x {reps})")
    if args.llm:
        rw = LLMRewriter(llm=args.llm)
        few = items[:4]
        rw.rewrite(few[:1])  # warm-up
        t0 = time.perf_counter()
        outs = rw.rewrite(few)
        llm_s = (time.perf_counter() - t0) / len(few)
        ok = sum(check_rationale(o.text or "", it.example, it.trace, program_answer=it.answer).ok for o, it in zip(outs, few))
        print(f"llm rewriter ({args.llm}): {1 / llm_s:.2f} rationales/s, {ok}/{len(few)} pass the check; "
              f"template is {llm_s / tmpl:.0f}x faster")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
