"""The synth stage on Ray: a real local Ray cluster on loopback, started and stopped by the tests.

Programs come from the ``replay`` sampler fed with the 3 few-shot library programs nearest to each
question (``vpd.benchmarks.perf.synth.write_recordings``), so runs are deterministic without an LLM;
execution is the real sandbox on the real ``shapes`` backend (in a Ray actor for the Ray engine).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from vpd.runs import RunStore
from vpd.synth import SynthConfig, run_synth

RAY = str(Path(sys.executable).with_name("ray"))


# --------------------------------------------------------------------------------------------
# fast unit tests (no cluster)
# --------------------------------------------------------------------------------------------
def test_partition_keeps_questions_together_and_loses_nothing(shapes_dir):
    from vpd.datasets import read_examples
    from vpd.ray_engine import partition

    examples, _ = read_examples(shapes_dir)
    parts = partition(examples, 5)
    assert sorted(e.id for p in parts for e in p) == sorted(e.id for e in examples)
    where = {}
    for i, p in enumerate(parts):
        for e in p:
            assert where.setdefault((e.question, e.choices), i) == i
    assert partition(examples, 5) == parts  # stable


def test_commit_is_atomic_and_committed_ids_reads_blocks(tmp_path):
    from vpd.ray_storage import commit_file, committed_ids, committed_shards, shard_committed

    out = str(tmp_path / "out")
    src = tmp_path / "part.jsonl"
    lines = [{"example_id": "a", "index": 0, "n_candidates": 2}, {"example_id": "a", "index": 1, "n_candidates": 2},
             {"example_id": "b", "index": 0, "n_candidates": 2}]  # b is torn: only 1 of 2 lines
    src.write_text("".join(json.dumps(x) + "\n" for x in lines))
    assert not shard_committed(out, 3)
    commit_file(src, out, "candidates-00003.jsonl")
    assert shard_committed(out, 3) and committed_shards(out) == ["candidates-00003.jsonl"]
    assert committed_ids(out) == {"a"}
    assert not [p for p in Path(out).iterdir() if ".tmp-" in p.name]
    # fsspec URIs work too (memory filesystem)
    commit_file(src, "memory://vpdtest/run", "candidates-00000.jsonl")
    assert committed_ids("memory://vpdtest/run") == {"a"}


def test_tool_actor_serves_analyses_and_answers(shapes_dir):
    """Shared image analyses without a cluster: the actor's describe names the analysed tools and
    their answer context, analyse_batch returns JSON per image; the shard-side ActorBackend answers
    from that JSON locally (no actor round trip), equal to the tool run in the actor."""
    from PIL import Image

    from vpd.datasets import read_examples
    from vpd.ray_tools import ActorBackend, ToolActorImpl
    from vpd.tools.errors import ToolError
    from vpd.tools.toolbox import to_json_result

    impl = ToolActorImpl("shapes")
    info = impl.describe()
    assert info["detect"]["analysed"] == sorted(info["detect"]["analysed"]) and "detect" in info["detect"]["analysed"]
    assert info["detect"]["backend"] == "shapes"
    examples, _ = read_examples(shapes_dir)
    pixels = np.asarray(Image.open(examples[0].image).convert("RGB"))
    [analysis] = impl.analyse_batch("detect", [pixels])
    direct = impl.run_batch("detect", [pixels], [{"query": "object"}])[0]
    local = ActorBackend(actor=None, tool="detect", info=info["detect"])  # never contacts the actor
    assert local.uses_analysis("detect", {"query": "object"})
    assert to_json_result("detect", local.answer("detect", analysis, query="object")) == direct and direct
    assert set(impl.run_batch("detect", [pixels], [{"query": "giraffe"}])[0]) == {"__error__"}
    with pytest.raises(ToolError):  # the same query fails the same way when answered locally
        local.answer("detect", analysis, query="giraffe")
    count = ActorBackend(actor=None, tool="count", info=info["count"])
    assert count.answer("count", analysis, query="object") == impl.run_batch("count", [pixels],
                                                                              [{"query": "object"}])[0]


def test_cli_engine_option_and_usage_errors_before_ray_starts(shapes_dir, tmp_path):
    from typer.testing import CliRunner

    from vpd.cli import app

    runner = CliRunner()
    base = ["synth", "--data", str(shapes_dir), "--out", str(tmp_path / "run"), "--quiet"]
    res = runner.invoke(app, base + ["--engine", "spark"])
    assert res.exit_code == 2 and "--engine" in res.output
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "candidates-00000.jsonl").write_text("")
    res = runner.invoke(app, base + ["--engine", "ray", "--shards", "2"])
    assert res.exit_code == 2 and "already has results" in res.output


# --------------------------------------------------------------------------------------------
# a real Ray cluster on loopback
# --------------------------------------------------------------------------------------------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def ray_cluster(tmp_path_factory):
    """``ray start --head`` on 127.0.0.1 with 2 CPUs; yields its address; ``ray stop --force`` after."""
    import ray  # noqa: F401  (installed by requirements.txt; never skipped)
    port = _free_port()
    tmp = tmp_path_factory.mktemp("ray")
    # Ray >= 2.5x turns token auth on when ~/.ray/auth_token exists, but a driver reads its token
    # mode when `ray` is first imported (maybe long before this fixture): this throwaway test
    # cluster runs without auth, and so does our driver
    auth = {"RAY_AUTH_MODE": "disabled"}
    saved = {k: os.environ.get(k) for k in auth}
    os.environ.update(auth)
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0", "HF_HUB_OFFLINE": "1"}
    cmd = [RAY, "start", "--head", "--node-ip-address", "127.0.0.1", "--port", str(port), "--num-cpus", "2",
           "--num-gpus", "0", "--include-dashboard=false", "--disable-usage-stats",
           "--temp-dir", str(tmp / "r")]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    address = f"127.0.0.1:{port}"
    try:
        yield address
    finally:
        import ray

        if ray.is_initialized():
            ray.shutdown()
        subprocess.run([RAY, "stop", "--force"], env=env, capture_output=True, timeout=120)
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@pytest.fixture(scope="module")
def recordings(shapes_dir, tmp_path_factory):
    from vpd.benchmarks.perf.synth import write_recordings

    rec = tmp_path_factory.mktemp("rec") / "recordings.jsonl"
    write_recordings(shapes_dir, rec, 3, None)
    return rec


def _cfg(shapes_dir, recordings, out, **kw) -> SynthConfig:
    base = dict(data=str(shapes_dir), out=str(out), llm=f"replay:{recordings}", tools="shapes", k=3, cache="memory",
                workers=1, seed=0, temperature=0.0, greedy_first=False, timeout_s=5.0, progress=False)
    return SynthConfig(**{**base, **kw})


def _verified(run) -> dict:
    """example id -> (chosen index, answer, lenient verdict) of verified.jsonl."""
    out = {}
    for line in (Path(run) / "verified.jsonl").read_text().splitlines():
        rec = json.loads(line)
        c = rec["candidate"]
        assert rec["example"]["id"] not in out  # no duplicate lines
        out[rec["example"]["id"]] = (c["index"], c["answer"], c["verdict"]["lenient"], c["program"])
    return out


def _candidate_ids(run) -> list[str]:
    """Every committed example id, once per block, over all shards (duplicates kept)."""
    from vpd.runs import _parse_blocks

    ids = []
    for shard in RunStore(run).shards():
        blocks, _ = _parse_blocks(shard.read_bytes())
        ids += [b[0]["example_id"] for b in blocks]
    return ids


@pytest.fixture(scope="module")
def local_run(shapes_dir, recordings, tmp_path_factory):
    out = tmp_path_factory.mktemp("local") / "run"
    report = run_synth(_cfg(shapes_dir, recordings, out)).report
    return out, report


@pytest.mark.slow
def test_ray_engine_matches_local_engine(ray_cluster, local_run, shapes_dir, recordings, tmp_path):
    import ray

    from vpd.ray_engine import run_synth_ray

    local_out, local_report = local_run
    ray.init(address=ray_cluster, log_to_driver=False)
    try:
        summary = run_synth_ray(_cfg(shapes_dir, recordings, tmp_path / "ray"), shards=4, tool_actors=1)
    finally:
        ray.shutdown()
    want, got = _verified(local_out), _verified(tmp_path / "ray")
    assert want, "the library programs verify some examples"
    assert got == want
    ids = _candidate_ids(tmp_path / "ray")
    assert sorted(ids) == sorted(_candidate_ids(local_out)) and len(ids) == len(set(ids)) == 40
    rep = summary["report"]
    assert rep["examples"] == local_report["examples"] == 40
    assert rep["overall"]["verified_share"] == local_report["overall"]["verified_share"] > 0
    assert rep["llm"]["llm_requests"] == local_report["llm"]["llm_requests"] > 0
    # the tools ran in the actor, batched across the shards' programs; the shapes segmentation of an
    # image was analysed there once and answered further queries (cached in the shard)
    assert sum(a["calls"] for a in summary["tool_actors"]) > 0
    assert rep["tools"]["toolbox"]["analysis_hits"] > 0 and local_report["tools"]["toolbox"]["analysis_hits"] > 0
    assert len({r["shard"] for r in summary["results"]}) == len(summary["results"]) >= 2
    # the shards' prompts are fingerprinted like a local run's (the same library, the same API)
    local_fp = json.loads((local_out / "manifest.json").read_text())["versions"]["prompt_fingerprint"]
    ray_manifest = json.loads((tmp_path / "ray" / "manifest.json").read_text())
    assert ray_manifest["versions"]["prompt_fingerprint"] == local_fp == ray_manifest["sessions"][-1]["prompt_fingerprint"]
    assert not summary.get("warnings")


def _shard_processes() -> dict[int, int]:
    """pid -> shard number of Ray worker processes currently running a synth shard."""
    out = subprocess.run(["ps", "-eo", "pid=,args="], capture_output=True, text=True).stdout
    found = {}
    for line in out.splitlines():
        pid, _, args = line.strip().partition(" ")
        if args.startswith("ray::synth_shard_"):
            try:
                found[int(pid)] = int(args.split("synth_shard_", 1)[1].split()[0])
            except ValueError:
                continue
    return found


@pytest.mark.slow
def test_killing_a_worker_mid_run_loses_and_duplicates_nothing(ray_cluster, local_run, shapes_dir, recordings,
                                                               tmp_path):
    import ray

    from vpd.ray_engine import run_synth_ray
    from vpd.ray_storage import shard_committed

    out = tmp_path / "killed"
    killed: dict[str, int] = {}

    def killer() -> None:
        deadline = time.time() + 120
        while time.time() < deadline and not killed:
            for pid, shard in _shard_processes().items():
                if not shard_committed(str(out), shard):
                    time.sleep(1.0)  # let it get into its work
                    if not shard_committed(str(out), shard):
                        os.kill(pid, signal.SIGKILL)
                        killed.update(pid=pid, shard=shard)
                        return
            time.sleep(0.2)

    thread = threading.Thread(target=killer, daemon=True)
    ray.init(address=ray_cluster, log_to_driver=False)
    try:
        thread.start()
        summary = run_synth_ray(_cfg(shapes_dir, recordings, out), shards=3, tool_actors=1, max_retries=3)
    finally:
        ray.shutdown()
    thread.join(timeout=5)
    assert killed, "a shard worker was found and killed"
    by_shard = {r["shard"]: r for r in summary["results"]}
    # the killed shard was redone by another worker process
    assert by_shard[killed["shard"]]["pid"] != killed["pid"]
    ids = _candidate_ids(out)
    assert len(ids) == len(set(ids)) == 40
    assert _verified(out) == _verified(local_run[0])
    assert not [p for p in out.iterdir() if ".tmp-" in p.name]


@pytest.mark.slow
def test_resume_runs_only_the_missing_examples(ray_cluster, shapes_dir, recordings, tmp_path):
    import ray

    from vpd.ray_engine import run_synth_ray

    out = tmp_path / "resumed"
    class Crash(Exception):
        pass

    seen = []

    def crash_after_10(ex, cands):
        seen.append(ex.id)
        if len(seen) == 10:
            raise Crash  # a local run that died after committing 10 examples

    with pytest.raises(Crash):
        run_synth(_cfg(shapes_dir, recordings, out), on_example=crash_after_10)
    ray.init(address=ray_cluster, log_to_driver=False)
    try:
        summary = run_synth_ray(_cfg(shapes_dir, recordings, out, resume=True), shards=2, use_actor=False)
    finally:
        ray.shutdown()
    assert summary["already_done"] == 10
    assert sum(r.get("examples", 0) for r in summary["results"]) == 30
    ids = _candidate_ids(out)
    assert len(ids) == len(set(ids)) == 40
    assert min(summary["shards"]) == 1  # numbered after the local run's candidates-00000.jsonl


@pytest.mark.slow
def test_rationalize_on_ray_matches_local(ray_cluster, local_run, tmp_path):
    """`vpd rationalize --engine ray` writes the same rationales, in the same order, as the local engine."""
    import shutil

    import ray

    from vpd.distill.rationalize import rationalize_run
    from vpd.ray_engine import rationalize_ray

    local_out, _ = local_run
    copy = tmp_path / "copy"
    shutil.copytree(local_out, copy)
    rationalize_run(local_out, rewriter="template", show_progress=False)
    ray.init(address=ray_cluster, log_to_driver=False)
    try:
        total = rationalize_ray(copy, rewriter="template", shards=3)
    finally:
        ray.shutdown()
    want = [json.loads(l) for l in (local_out / "rationales.jsonl").read_text().splitlines()]
    got = [json.loads(l) for l in (copy / "rationales.jsonl").read_text().splitlines()]
    assert want and [r["rationale"] for r in got] == [r["rationale"] for r in want]
    assert total["kept"] == sum(1 for r in want if r.get("kept", True)) and total["shards"] == 3
    assert json.loads((copy / "report.json").read_text())["rationalize"]["engine"] == "ray"


@pytest.mark.slow
def test_lskd_on_ray_matches_local(ray_cluster, shapes_dir, tmp_path):
    """`vpd lskd --engine ray`: image shards on Ray give the same verbalisations and kept triples as local."""
    import ray

    from vpd.distill.lskd_run import LskdConfig, run_lskd
    from vpd.ray_engine import lskd_ray_mapper

    def cfg(out):
        return LskdConfig(data=str(shapes_dir), out=str(out), llm=None, tools="shapes", max_images=6, seed=0)

    local = run_lskd(cfg(tmp_path / "local"), show_progress=False, log=lambda *a, **k: None)
    ray.init(address=ray_cluster, log_to_driver=False)
    try:
        remote = run_lskd(cfg(tmp_path / "ray"), show_progress=False, log=lambda *a, **k: None,
                          mapper=lskd_ray_mapper(shards=3))
    finally:
        ray.shutdown()
    assert remote.verbalised == local.verbalised == 6
    assert remote.triples == local.triples and remote.kept == local.kept
    for name in ("verbalisations.jsonl", "lskd.jsonl"):
        assert (tmp_path / "ray" / name).read_text() == (tmp_path / "local" / name).read_text()
