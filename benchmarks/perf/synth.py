"""Synth-stage speed: tool-backend invocations with vs without the tool cache, LLM requests with
vs without question-level reuse, and examples/s end to end.

    python -m vpd.benchmarks.perf.synth [--quick] [--n 60] [--k 5] [--workers 2]

Programs come from the ``replay`` sampler fed with the k few-shot library programs nearest to each
question (their colour/shape/size words re-targeted to the question), so the measurement is
deterministic and needs no LLM; execution is the real sandbox on the real ``shapes`` backend.
Every number is measured in this run; ratios are against the baseline measured alongside.
"""

from __future__ import annotations

import argparse
import json
import re
import tempfile
import time
from pathlib import Path
from typing import Any

from vpd.datasets import read_examples


def retarget(program: str, src_question: str, dst_question: str) -> str:
    """Replace the filler words (colour, shape, size) of ``src_question`` in the program's string
    literals with the words of the same kind, in the same order, from ``dst_question``."""
    from vpd.programs.retrieval import _classify, _singular

    def fillers(q: str) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for w in re.findall(r"[a-z]+", q.lower()):
            kind = _classify(w)
            if kind in ("color", "shape", "size"):
                out.setdefault(kind, []).append(_singular(w))
        return out

    src, dst = fillers(src_question), fillers(dst_question)
    mapping: dict[str, str] = {}
    for kind, words in src.items():
        for i, w in enumerate(words):
            if kind in dst and i < len(dst[kind]) and w not in mapping:
                mapping[w] = dst[kind][i]
    if not mapping:
        return program
    pattern = re.compile(r"\b(" + "|".join(re.escape(w) for w in sorted(mapping, key=len, reverse=True)) + r")\b")

    def fix_literal(m: re.Match) -> str:
        return pattern.sub(lambda w: mapping[w.group(1)], m.group(0))

    return re.sub(r"\"[^\"\n]*\"|'[^'\n]*'", fix_literal, program)


def write_recordings(data: Path, out: Path, k: int, limit: int | None) -> int:
    """A replay file: per distinct question, the k nearest library programs as completions."""
    from vpd.programs.retrieval import Retriever
    from vpd.programs.library import load_library
    from vpd.programs.prompt import CODE_PREFIX

    examples, _ = read_examples(data)
    examples = examples[:limit] if limit else examples
    lib = load_library()
    retriever = Retriever(lib)
    seen: set[tuple] = set()
    with out.open("w") as fh:
        for ex in examples:
            key = (ex.question, ex.choices)
            if key in seen:
                continue
            seen.add(key)
            progs = retriever.nearest(ex.question, ex.choices, k)[::-1]  # most similar first
            comps = []
            for p in progs:
                body = retarget(p.program, p.question, ex.question)
                comps.append(body.split(CODE_PREFIX, 1)[1] if CODE_PREFIX in body else body)
            fh.write(json.dumps({"question": ex.question, "choices": ex.choices, "completions": comps}) + "\n")
    return len(seen)


def run_once(data: Path, out: Path, llm: str, k: int, limit: int | None, *, cache: str, reuse: bool,
             workers: int) -> dict[str, Any]:
    from vpd.synth import SynthConfig, run_synth

    cfg = SynthConfig(data=str(data), out=str(out), llm=llm, tools="shapes", k=k, limit=limit, cache=cache,
                      reuse=reuse, workers=workers, temperature=0.0, greedy_first=False, progress=False,
                      overwrite=True)
    t0 = time.perf_counter()
    rep = run_synth(cfg).report
    wall = time.perf_counter() - t0
    tools = rep["tools"]
    return {"wall_s": wall, "examples": rep["examples"], "examples_per_s": rep["examples"] / wall if wall else 0.0,
            "tool_calls": tools["calls"], "backend_invocations": tools["calls"] - tools["cached"],
            "toolbox_backend_calls": tools["toolbox"].get("backend_calls"),
            "llm_requests": rep["llm"]["llm_requests"], "verified_share": rep["overall"].get("verified_share")}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a small dataset (30 examples)")
    ap.add_argument("--data", type=Path, default=None, help="a shapes dataset (default: generate one)")
    ap.add_argument("--n", type=int, default=None, help="examples to use")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    n = args.n or (30 if args.quick else 120)
    tmp = Path(tempfile.mkdtemp(prefix="vpd-perf-synth-"))
    data = args.data
    if data is None:
        from vpd.benchmarks.shapes import make_dataset

        data = tmp / "data"
        make_dataset(data, n=max(1, n // 2), seed=1, per_image=2)
    rec = tmp / "recordings.jsonl"
    distinct = write_recordings(data, rec, args.k, n)
    llm = f"replay:{rec}"
    base = run_once(data, tmp / "nocache", llm, args.k, n, cache="off", reuse=True, workers=args.workers)
    cached = run_once(data, tmp / "cache", llm, args.k, n, cache=str(tmp / "tools.sqlite"), reuse=True,
                      workers=args.workers)
    per_example = run_once(data, tmp / "noreuse", llm, args.k, n, cache="memory", reuse=False, workers=args.workers)
    ratio_tools = cached["backend_invocations"] / max(1, base["backend_invocations"])
    ratio_llm = base["llm_requests"] / max(1, per_example["llm_requests"])
    out = {"examples": base["examples"], "distinct_questions": distinct, "k": args.k,
           "uncached": base, "cached": cached, "per_example": per_example,
           "tool_invocations_ratio_cached_vs_uncached": round(ratio_tools, 4),
           "llm_requests_ratio_reuse_vs_per_example": round(ratio_llm, 4),
           "speedup_examples_per_s_cached_vs_uncached": round(cached["examples_per_s"] / max(1e-9, base["examples_per_s"]), 3)}
    print(json.dumps(out, indent=2))
    print(f"tool-backend invocations, cached / uncached: {cached['backend_invocations']} / "
          f"{base['backend_invocations']} = {ratio_tools:.3f} (goal <= 0.3)")
    print(f"LLM requests, question reuse / per example: {base['llm_requests']} / {per_example['llm_requests']} "
          f"= {ratio_llm:.3f}")
    print(f"examples/s end to end: {cached['examples_per_s']:.2f} cached, {base['examples_per_s']:.2f} uncached")
    return out


if __name__ == "__main__":
    main()
