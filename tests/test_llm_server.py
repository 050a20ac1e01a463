"""`vpd llm serve`: one sampler behind an OpenAI-compatible server; concurrent requests micro-batched.

The sampler under the server here is a FakeSampler (the server is what is tested); the slow test
serves the real packaged Gemma to a real `vpd synth`."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

import pytest

from vpd.programs.llm_server import make_llm_server
from vpd.programs.sampler_base import Completion, Sampler, load_sampler


class FakeSampler(Sampler):
    """Answers ``<prompt>|t=<temperature>|s=<seed>|<j>``; records each generate call's prompts."""

    kind = "fake"

    def __init__(self, delay_s: float = 0.0, fail_on: str | None = None) -> None:
        super().__init__(name="fake")
        self.calls: list[list[str]] = []
        self.delay_s, self.fail_on = delay_s, fail_on

    def generate(self, prompts, *, n=1, temperature=0.0, max_tokens=256, stop=None, seed=None):
        self.calls.append(list(prompts))
        time.sleep(self.delay_s)
        return [[Completion(text="", error="RuntimeError: out of memory") if self.fail_on and self.fail_on in p
                 else Completion(text=f"{p}|t={temperature}|s={seed}|{j}", prompt_tokens=len(p), completion_tokens=3)
                 for j in range(n)] for p in prompts]


class Served:
    def __init__(self, sampler, **kw):
        self.httpd = make_llm_server(sampler, port=0, **kw)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()
        self.httpd.endpoint.close()


def post(url, body, key=None):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json",
                                          **({"Authorization": f"Bearer {key}"} if key else {})})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


def test_the_openai_client_gets_n_choices_per_prompt_in_order():
    from openai import OpenAI

    with Served(FakeSampler()) as s:
        client = OpenAI(base_url=s.url, api_key="none", max_retries=0)
        r = client.completions.create(model="vpd-llm", prompt=["A", "B"], n=2, temperature=0.5, max_tokens=8, seed=3)
        assert [c.index for c in r.choices] == [0, 1, 2, 3]
        assert [c.text for c in r.choices] == ["A|t=0.5|s=3|0", "A|t=0.5|s=3|1", "B|t=0.5|s=3|0", "B|t=0.5|s=3|1"]
        assert r.usage.prompt_tokens == 2 and r.usage.completion_tokens == 12
        chat = client.chat.completions.create(model="vpd-llm", messages=[{"role": "system", "content": "sys"},
                                                                         {"role": "user", "content": "hi"}])
        assert chat.choices[0].message.content.startswith("sys\n\nhi|")
        assert [m.id for m in client.models.list().data] == ["vpd-llm"]


@pytest.mark.parametrize("max_batch", [1, 8])
def test_our_openai_sampler_reads_the_served_sampler(max_batch):
    """Each request's seed reaches the model alone (max_batch 1); a shared batch takes its first one's."""
    with Served(FakeSampler(delay_s=0.05), max_batch=max_batch, max_wait_ms=100) as s:
        remote = load_sampler(f"openai:vpd-llm@{s.url}?max_retries=0")
        rows = remote.generate_k(["Q1", "Q2"], k=3, temperature=0.7, max_tokens=16, seed=10)
    texts = [[c.text for c in row] for row in rows]
    assert [[t.split("|s=")[0] for t in row] for row in texts] == [["Q1|t=0.7"] * 3, ["Q2|t=0.7"] * 3]
    seeds = {t.split("|s=")[1].split("|")[0] for row in texts for t in row}
    assert seeds == ({"10", "11"} if max_batch == 1 else {"10"} if texts[0][0].endswith("s=10|0") else {"11"})


def test_concurrent_requests_share_generate_calls_and_get_their_own_answers():
    fake = FakeSampler(delay_s=0.3)
    with Served(fake, max_batch=8, max_wait_ms=50) as s:
        out: dict[int, tuple] = {}

        def ask(i):
            out[i] = post(s.url + "/completions", {"model": "vpd-llm", "prompt": f"P{i}", "n": 2,
                                                   "temperature": 0.7, "seed": i})

        threads = [threading.Thread(target=ask, args=(i,)) for i in range(6)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        # another temperature never joins their batch
        status, other = post(s.url + "/completions", {"model": "vpd-llm", "prompt": "X", "temperature": 0.0})
        health = json.loads(urllib.request.urlopen(s.url.replace("/v1", "/health"), timeout=5).read())
    for i in range(6):
        status, body = out[i]
        assert status == 200 and [c["text"].split("|")[0] for c in body["choices"]] == [f"P{i}", f"P{i}"]
    assert sum(len(c) for c in fake.calls) == 7 and max(len(c) for c in fake.calls) >= 2
    assert ["X"] in fake.calls and other["choices"][0]["text"].startswith("X|t=0.0")
    assert health["requests"] == 7 and health["batches"] == len(fake.calls) < 7


def test_max_batch_one_keeps_every_request_alone():
    fake = FakeSampler(delay_s=0.1)
    with Served(fake, max_batch=1, max_wait_ms=50) as s:
        threads = [threading.Thread(target=post, args=(s.url + "/completions", {"prompt": f"P{i}"})) for i in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    assert sorted(fake.calls) == [["P0"], ["P1"], ["P2"], ["P3"]]


def test_errors_have_the_openai_shape_and_the_right_status():
    with Served(FakeSampler(fail_on="boom"), api_key="k") as s:
        assert post(s.url + "/completions", {"prompt": "a"})[0] == 401
        cases = [({"prompt": "a", "n": 0}, 400), ({"prompt": "a", "stream": True}, 400), ({"prompt": [1, 2]}, 400),
                 ({"prompt": "a", "model": "gpt-9"}, 404), ({"prompt": "boom"}, 500), ({"prompt": "fine"}, 200)]
        for body, want in cases:
            status, payload = post(s.url + "/completions", body, key="k")
            assert status == want, (body, payload)
            if want != 200:
                assert set(payload["error"]) >= {"message", "type"}
        assert post(s.url + "/embeddings", {"input": "a"}, key="k")[0] == 404
        status, payload = post(s.url + "/completions", {"prompt": "boom"}, key="k")
        assert "out of memory" in payload["error"]["message"]


def test_cli_refuses_a_bad_spec():
    from typer.testing import CliRunner

    from vpd.cli import app

    res = CliRunner().invoke(app, ["llm", "serve", "--llm", "gemma?token=abc", "--port", "0"])
    assert res.exit_code == 2 and "environment variable" in res.output


@pytest.mark.slow
def test_synth_against_the_served_gemma(tmp_path):
    """The real packaged Gemma behind `vpd llm serve`'s server; a real `vpd synth` with questions in flight.

    The client timeout is generous (900 s): a CPU busy with other jobs can take minutes for one
    micro-batch of 8 questions, and this test is about correctness, not speed."""
    from vpd.benchmarks.shapes import make_dataset
    from vpd.synth import SynthConfig, run_synth

    make_dataset(tmp_path / "data", n=3, seed=5)
    gemma = load_sampler("gemma")
    with Served(gemma, max_batch=8, max_wait_ms=30) as s:
        cfg = SynthConfig(data=str(tmp_path / "data"), out=str(tmp_path / "run"), llm=f"openai:vpd-llm@{s.url}?timeout_s=900",
                          k=2, limit=6, progress=False, cache="memory", max_tokens=128)
        result = run_synth(cfg)
        health = json.loads(urllib.request.urlopen(s.url.replace("/v1", "/health"), timeout=5).read())
    rep = result.report
    assert rep["examples"] == 6 and rep["llm"]["llm_errors"] == 0
    assert rep["overall"]["verified_share"] > 0  # the 270M model writes some working programs
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["sessions"][-1]["sampling"]["per_question"] is True
    assert health["requests"] >= 1 and health["failures"] == 0


@pytest.mark.slow
def test_serving_benchmark_runs_its_three_configurations(capsys):
    from vpd.benchmarks.perf import llm_serving

    out = llm_serving.main(["--n", "4", "--k", "2", "--max-tokens", "48", "--concurrency", "4"])
    runs = out["runs"]
    assert set(runs) == {"a_in_process", "b_served_serial", "c_served_in_flight"}
    for r in runs.values():
        assert r["examples"] == 4 and r["llm_errors"] == 0 and r["seconds"] > 0
    assert runs["a_in_process"]["sampling"] == {"llm_batch": 1, "per_question": False, "overlap": False}
    assert runs["b_served_serial"]["sampling"] == {"llm_batch": 1, "per_question": True, "overlap": False}
    assert runs["c_served_in_flight"]["sampling"] == {"llm_batch": 4, "per_question": True, "overlap": True}
    assert runs["c_served_in_flight"]["server_mean_batch_prompts"] >= 1.0
    r = out["ratios"]
    assert r["c_vs_b_seconds"] == round(runs["c_served_in_flight"]["seconds"] / runs["b_served_serial"]["seconds"], 4)
    assert "in flight / serial" in capsys.readouterr().out
