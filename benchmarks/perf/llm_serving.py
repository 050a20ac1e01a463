"""Synth end to end with the program-writing model served: questions one at a time vs in flight.

    python -m vpd.benchmarks.perf.llm_serving [--quick] [--n 24] [--k 4] [--llm gemma] [--json F]

The same examples, the same real model (default the packaged Gemma 3 270M), the real sandbox and
``shapes`` tools, three ``vpd synth`` runs in this process:

(a) in-process — the model in the synth process, one question per call (the offline default);
(b) served, serial — the model behind ``vpd llm serve``'s server (micro-batching on), the client
    asking one question at a time and waiting for its programs to run (``--llm-batch 1
    --no-overlap``: what ``vpd synth`` did before questions went in flight);
(c) served, in flight — the default for a remote sampler: ``concurrency`` questions in flight
    (the server gathers them into shared ``generate`` calls) and the next chunk sampled while the
    current one's programs run.

Printed: seconds and examples/s of each, the ratios (c)/(b) and (c)/(a) of wall time, the server's
mean prompts per ``generate`` call, and every run's verified share (the model's programs differ
between runs — sampling seeds meet different batches — so shares are a sanity check, not a goal).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import threading
import time
from pathlib import Path
from typing import Any


def _synth(data: Path, out: Path, *, llm: str, k: int, limit: int, max_tokens: int, sampler: Any = None,
           **extra: Any) -> dict[str, Any]:
    from vpd.synth import SynthConfig, run_synth

    cfg = SynthConfig(data=str(data), out=str(out), llm=llm, k=k, limit=limit, progress=False, cache="memory",
                      max_tokens=max_tokens, **extra)
    t0 = time.perf_counter()
    result = run_synth(cfg, sampler=sampler)
    seconds = time.perf_counter() - t0
    rep = result.report
    session = json.loads((out / "manifest.json").read_text())["sessions"][-1]
    return {"seconds": round(seconds, 2), "examples": rep["examples"],
            "examples_per_s": round(rep["examples"] / seconds, 4),
            "verified_share": rep["overall"]["verified_share"], "llm_requests": rep["llm"]["llm_requests"],
            "llm_errors": rep["llm"]["llm_errors"], "sampling": session.get("sampling", {}),
            "sample_wait_s": round(session["stage_s"]["sample"], 2),
            "execute_s": round(session["stage_s"]["execute"], 2)}


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="a smoke run (8 examples, k 2, short completions)")
    ap.add_argument("--n", type=int, default=None, help="examples (default 24, quick 8)")
    ap.add_argument("--k", type=int, default=None, help="programs per question (default 4, quick 2)")
    ap.add_argument("--max-tokens", type=int, default=None, help="per completion (default 160, quick 96)")
    ap.add_argument("--llm", default="gemma", help="the in-process sampler to serve (gemma, transformers:PATH)")
    ap.add_argument("--concurrency", type=int, default=8, help="client questions in flight in (c)")
    ap.add_argument("--max-batch", type=int, default=8, help="the server's most prompts per generate call")
    ap.add_argument("--json", type=Path, default=None, help="also write the results here")
    args = ap.parse_args(argv)
    n = args.n or (8 if args.quick else 24)
    k = args.k or (2 if args.quick else 4)
    max_tokens = args.max_tokens or (96 if args.quick else 160)

    from vpd.benchmarks.shapes import make_dataset
    from vpd.programs.llm_server import make_llm_server
    from vpd.programs.sampler_base import load_sampler

    with tempfile.TemporaryDirectory(prefix="vpd-perf-llm-serving-") as tmp_name:
        tmp = Path(tmp_name)
        make_dataset(tmp / "data", n=max(2, n // 2 + 1), seed=11)
        t0 = time.perf_counter()
        model = load_sampler(args.llm)
        print(f"loaded {model.name} in {time.perf_counter() - t0:.1f} s; {n} examples, k={k}, "
              f"max_tokens={max_tokens}")
        runs: dict[str, dict[str, Any]] = {}
        runs["a_in_process"] = _synth(tmp / "data", tmp / "a", llm=args.llm, k=k, limit=n, max_tokens=max_tokens,
                                      sampler=model)
        print(f"(a) in-process:        {runs['a_in_process']}")
        httpd = make_llm_server(model, port=0, max_batch=args.max_batch, max_wait_ms=20.0)
        thread = threading.Thread(target=httpd.serve_forever, daemon=True)
        thread.start()
        url = f"http://127.0.0.1:{httpd.server_address[1]}/v1"
        # our server takes every stop string (the OpenAI API only 4): the model stops where in-process would
        spec = f"openai:vpd-llm@{url}?concurrency={args.concurrency}&timeout_s=600&max_retries=1&server_stops=16"
        try:
            runs["b_served_serial"] = _synth(tmp / "data", tmp / "b", llm=spec, k=k, limit=n, max_tokens=max_tokens,
                                             llm_batch=1, overlap=False)
            print(f"(b) served, serial:    {runs['b_served_serial']}")
            before = len(httpd.endpoint.batcher.batch_sizes)  # type: ignore[attr-defined]
            runs["c_served_in_flight"] = _synth(tmp / "data", tmp / "c", llm=spec, k=k, limit=n,
                                                max_tokens=max_tokens)
            sizes = httpd.endpoint.batcher.batch_sizes[before:]  # type: ignore[attr-defined]
            runs["c_served_in_flight"]["server_mean_batch_prompts"] = round(sum(sizes) / max(1, len(sizes)), 3)
            print(f"(c) served, in flight: {runs['c_served_in_flight']}")
        finally:
            httpd.shutdown()
            httpd.server_close()
            httpd.endpoint.close()  # type: ignore[attr-defined]
            model.close()
    a, b, c = (runs[key]["seconds"] for key in ("a_in_process", "b_served_serial", "c_served_in_flight"))
    ratios = {"c_vs_b_seconds": round(c / b, 4), "c_vs_a_seconds": round(c / a, 4), "b_vs_a_seconds": round(b / a, 4)}
    print(f"wall time, in flight / serial (same server): {ratios['c_vs_b_seconds']:.2f}x; "
          f"in flight / in-process: {ratios['c_vs_a_seconds']:.2f}x; served serial / in-process: "
          f"{ratios['b_vs_a_seconds']:.2f}x")
    out = {"examples": n, "k": k, "max_tokens": max_tokens, "llm": args.llm, "runs": runs, "ratios": ratios}
    if args.json:
        args.json.write_text(json.dumps(out, indent=2))
    return out


if __name__ == "__main__":
    main()
