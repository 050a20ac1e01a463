"""``balanced:SPEC1|SPEC2``: client-side load balancing and failover over real samplers.

Endpoints are real ``openai`` samplers talking HTTP to loopback servers that speak the OpenAI
protocol (``FakeOpenAIServer`` from the openai sampler's tests), and real ``replay`` samplers.
"""

from __future__ import annotations

import json
import socket

from tests.test_samplers_openai import FakeOpenAIServer
from vpd.programs.sampler_balanced import UNHEALTHY_AFTER, BalancedSampler
from vpd.programs.sampler_base import load_sampler

FAST = dict(backoff_s=0.01, backoff_max_s=0.05, timeout_s=5.0, max_retries=0)


def _dead_url() -> str:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    return f"http://127.0.0.1:{port}/v1"


def test_spec_builds_one_sampler_per_endpoint():
    s = load_sampler("balanced:openai:m@http://127.0.0.1:1/v1|openai:m@http://127.0.0.1:2/v1")
    assert isinstance(s, BalancedSampler) and len(s.samplers) == 2
    assert [e["kind"] for e in s.describe()["endpoints"]] == ["openai", "openai"]


def test_prompts_are_spread_over_endpoints_in_order():
    with FakeOpenAIServer(script=["sleep"] * 8, sleep_s=0.2) as a, FakeOpenAIServer(script=["sleep"] * 8, sleep_s=0.2) as b:
        s = load_sampler(f"balanced:openai:m@{a.url}|openai:m@{b.url}", **FAST)
        prompts = [f"prompt number {i} " + "x" * i for i in range(8)]
        out = s.generate(prompts, n=2, max_tokens=16)
    assert len(out) == 8 and all(len(row) == 2 and all(c.ok for c in row) for row in out)
    # the fake server answers with the prompt's length: answers come back in prompt order
    assert [row[0].text.split("'")[1].split("-")[0] for row in out] == [str(len(p)) for p in prompts]
    assert len(a.requests) >= 2 and len(b.requests) >= 2 and len(a.requests) + len(b.requests) == 8
    assert sorted(s.describe()["requests"]) == sorted([len(a.requests), len(b.requests)])


def test_failover_to_a_healthy_endpoint():
    with FakeOpenAIServer() as good:
        s = load_sampler(f"balanced:openai:m@{_dead_url()}|openai:m@{good.url}", **FAST)
        out = s.generate([f"p{i}" for i in range(6)], n=1)
    assert all(row[0].ok for row in out)  # every prompt answered despite the dead endpoint
    assert len(good.requests) == 6


def test_unhealthy_endpoint_is_skipped_then_all_fail_is_recorded():
    dead = _dead_url()
    with FakeOpenAIServer() as good:
        s = load_sampler(f"balanced:openai:m@{dead}|openai:m@{good.url}", **FAST)
        for i in range(UNHEALTHY_AFTER + 2):
            s.generate([f"q{i}"])
        dead_requests = s.requests[0]
        good_requests = len(good.requests)
    # after UNHEALTHY_AFTER consecutive failures the dead endpoint is not tried first any more
    assert dead_requests <= UNHEALTHY_AFTER
    assert good_requests == UNHEALTHY_AFTER + 2
    s2 = load_sampler(f"balanced:openai:m@{dead}|openai:m@{_dead_url()}", **FAST)
    out = s2.generate(["x"], n=2)
    assert [bool(c.error) for c in out[0]] == [True, True]  # recorded, not raised


def test_replay_endpoints(tmp_path):
    rec = tmp_path / "r.jsonl"
    rec.write_text(json.dumps({"question": "How many cubes?", "choices": None,
                               "completions": ["    return 1\n", "    return 2\n"]}) + "\n")
    s = load_sampler(f"balanced:replay:{rec}|replay:{rec}")
    out = s.generate(["Question: How many cubes?"] * 4, n=2)
    assert [[c.text for c in row] for row in out] == [["    return 1\n", "    return 2\n"]] * 4
    assert sum(s.describe()["requests"]) == 4 and min(s.describe()["requests"]) >= 1
