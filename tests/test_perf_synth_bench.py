"""The synth perf benchmark (``vpd.benchmarks.perf.synth``): its four tool-invocation baselines on a
tiny dataset, the relations that must hold between them, and replaying recorded completions."""

from __future__ import annotations

import json

from vpd.benchmarks.perf import synth as bench


def _check_relations(out: dict, k: int) -> None:
    runs = out["runs"]
    a, b, c = runs["a_naive"], runs["b_dedupe_only"], runs["c_dedupe_cache_cold"]
    c0 = runs["c0_dedupe_result_cache_only"]
    a1, b1, d = runs["a_naive_seed1"], runs["b_dedupe_only_seed1"], runs["d_dedupe_cache_warm_seed1"]
    assert out["k"] == k and a["examples"] == b["examples"] == c["examples"] == d["examples"] == out["examples"] > 0
    for r in (a, b, a1, b1):  # no cache: every call reaches the backend, per toolbox and per traces
        assert r["backend_invocations"] == r["trace_backend_invocations"] == r["tool_calls"]
        assert r["cache_hits"] == 0 and r["analysis_hits"] == 0 and r["coalesced"] == 0
    # dedupe never adds work; the cache never adds invocations; a warm store helps the second run
    assert a["programs_executed"] >= b["programs_executed"] == c["programs_executed"]
    assert a["backend_invocations"] >= b["backend_invocations"] >= c0["backend_invocations"] \
        >= c["backend_invocations"] > 0
    assert c0["analysis_hits"] == 0 and c0["tool_calls"] == c["tool_calls"]
    assert a1["backend_invocations"] >= b1["backend_invocations"] >= d["backend_invocations"]
    assert c["tool_calls"] == b["tool_calls"] and d["tool_calls"] == b1["tool_calls"]
    for r in (c0, c):
        assert r["backend_invocations"] + r["cache_hits"] + r["analysis_hits"] + r["coalesced"] == r["tool_calls"]
    # the cache must not change any answer
    assert c["verified_share"] == c0["verified_share"] == b["verified_share"] == a["verified_share"]
    assert d["verified_share"] == b1["verified_share"]
    r = out["tool_invocation_ratios"]
    assert r["c_vs_b"] == round(c["backend_invocations"] / b["backend_invocations"], 4)
    assert r["c_vs_a"] <= r["c_vs_b"] <= r["c0_vs_b"] <= 1.0 and r["d_vs_b_seed1"] <= 1.0
    assert out["goal"]["ratio"] == "c_vs_b" and out["goal"]["value"] == r["c_vs_b"]
    assert out["goal"]["met"] == (r["c_vs_b"] <= 0.3)


def test_benchmark_library_programs(shapes_dir, tmp_path, capsys):
    out = bench.main(["--data", str(shapes_dir), "--n", "6", "--k", "3", "--workers", "1",
                      "--json", str(tmp_path / "out.json")])
    _check_relations(out, 3)
    assert json.loads((tmp_path / "out.json").read_text())["goal"] == out["goal"]
    text = capsys.readouterr().out
    assert "GOAL (issue 4" in text and "(c)/(b)" in text and "(c0)" in text and "(d) seed 1" in text


def test_benchmark_replays_recordings(shapes_dir, tmp_path):
    rec = tmp_path / "rec.jsonl"
    assert bench.write_recordings(shapes_dir, rec, 3, 6) > 0
    out = bench.main(["--recordings", str(rec), "--data", str(shapes_dir), "--n", "6", "--k", "2",
                      "--workers", "1", "--work", str(tmp_path / "work")])
    _check_relations(out, 2)
    assert out["source"].startswith("recordings") and out["completions_per_question"]["max"] == 3
    # seed 1 is another draw of 2 of the 3 recorded completions, seed 0 the first 2
    seed0 = [json.loads(x) for x in (tmp_path / "work" / "recordings-seed0.jsonl").read_text().splitlines()]
    pools = {(r["question"], tuple(r["choices"]) if r["choices"] else None): r["completions"]
             for r in map(json.loads, rec.read_text().splitlines())}
    for r in seed0:
        assert r["completions"] == pools[(r["question"], tuple(r["choices"]) if r["choices"] else None)][:2]


def test_draw_is_seeded_and_within_the_pool():
    pool = [f"p{i}" for i in range(6)]
    assert bench.draw(pool, 3, 0, ("q", None)) == ["p0", "p1", "p2"]
    d1 = bench.draw(pool, 3, 1, ("q", None))
    assert d1 == bench.draw(pool, 3, 1, ("q", None)) and len(set(d1)) == 3 and set(d1) <= set(pool)
    assert bench.draw(pool[:2], 3, 1, ("q", None)) == pool[:2]
