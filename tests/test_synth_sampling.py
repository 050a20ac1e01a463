"""How synth asks for programs: remote questions in flight together (same programs as one by one),
the next chunk sampled while the current one runs, and a failing call costing only its question."""

from __future__ import annotations

import json
import threading

from vpd.programs.sampler_base import load_sampler
from vpd.runs import read_candidates
from vpd.synth import SynthConfig, run_synth
from vpd.synth_config import SessionStats
from vpd.synth_writer import LLMProgramWriter
from vpd.synth_sampling import ChunkSampler, SampledChunk, default_llm_batch, sampled_chunks

from tests.test_samplers_openai import FakeOpenAIServer
from tests.test_synth import FakeExecutor, fake_prompter, make_data

ROWS = [(f"How many cubes are in row {i}?", "2", "count_simple") for i in range(6)] + \
       [("How many cubes are in row 0?", "3", "count_simple")]


def _run(tmp_path, name, server, **cfg_kw):
    data = tmp_path / "data"
    if not data.exists():
        make_data(data, ROWS)
    sampler = load_sampler(f"openai:m@{server.url}?concurrency=4&max_retries=0")
    cfg = SynthConfig(data=str(data), out=str(tmp_path / name), k=3, progress=False, cache="off", **cfg_kw)
    writer = LLMProgramWriter(sampler, tools=None, fewshot="fixed", temperature=0.7, max_tokens=32,
                              stats=SessionStats(), prompter=fake_prompter, greedy_first=False)
    before = len(server.requests)
    run_synth(cfg, writer=writer, executor=FakeExecutor(), sampler=sampler)
    seeds = {r["prompt"]: r["seed"] for r in server.requests[before:]}
    cands: dict[str, list] = {}
    for ex, c, _ in read_candidates(tmp_path / name):
        cands.setdefault(ex.id, []).append((c.index, c.program, c.verdict.strict))
    return seeds, cands, json.loads((tmp_path / name / "manifest.json").read_text())


def test_remote_questions_in_flight_together_write_the_same_programs(tmp_path):
    with FakeOpenAIServer(delay_s=0.2) as server:
        seeds_1, cands_1, _ = _run(tmp_path, "one", server, llm_batch=1, overlap=False)
        assert server.max_in_flight == 1
        server.max_in_flight = 0
        seeds_auto, cands_auto, manifest = _run(tmp_path, "auto", server)
        assert server.max_in_flight >= 2  # the default for a remote sampler: its concurrency
    assert len(seeds_1) == 6  # one request per distinct question
    assert seeds_auto == seeds_1  # each question's seed does not depend on its chunk
    assert cands_auto == cands_1 and len(cands_1) == 7
    plan = manifest["sessions"][-1]["sampling"]
    assert plan == {"llm_batch": 4, "per_question": True, "overlap": True}


def test_default_batch_follows_the_sampler():
    from vpd.programs.sampler_balanced import BalancedSampler
    from vpd.programs.sampler_replay import ReplaySampler

    remote = load_sampler("openai:m@http://127.0.0.1:9/v1?concurrency=6")
    assert default_llm_batch(remote) == 6
    assert default_llm_batch(BalancedSampler([remote, load_sampler("openai:m@http://127.0.0.1:8/v1")])) == 14
    local = ReplaySampler({}, name="replay:none")  # in-process: one question per call by default
    assert default_llm_batch(local) == 1 and default_llm_batch(BalancedSampler([remote, local])) == 1


def test_next_chunk_is_sampled_while_the_current_one_runs():
    started = {i: threading.Event() for i in range(3)}

    def sample(chunk: int) -> SampledChunk:
        started[chunk].set()
        return SampledChunk(rows=[[chunk]], seconds=[0.0])

    seen_ahead = []
    for chunk, got in sampled_chunks([0, 1, 2], sample, overlap=True):
        assert got.rows == [[chunk]]
        if chunk < 2:  # while the caller holds chunk i, chunk i+1 is already being sampled
            seen_ahead.append(started[chunk + 1].wait(timeout=10))
    assert seen_ahead == [True, True]
    started = {i: threading.Event() for i in range(3)}
    for chunk, _ in sampled_chunks([0, 1, 2], sample, overlap=False):
        assert not any(started[j].is_set() for j in range(chunk + 1, 3))


def test_a_failing_question_fails_alone_in_per_question_mode():
    def sample(qs, k, *, seed):
        if "bad" in qs[0][0]:
            raise ConnectionError("server went away")
        return [[f"{qs[0][0]}:{seed}"] * k for _ in qs]

    cs = ChunkSampler(sample, 2, seed_for=lambda *qs: len(qs[0][0]), per_question=True,
                      failed=lambda q, exc: [f"failed: {exc}"] * 2)
    got = cs([("good one", None), ("bad", None), ("good two", None)])
    assert got.rows == [["good one:8"] * 2, ["failed: server went away"] * 2, ["good two:8"] * 2]
    assert len(got.seconds) == 3 and all(s >= 0 for s in got.seconds)
