"""The openai sampler against a real HTTP server on loopback that speaks the OpenAI JSON protocol."""

from __future__ import annotations

import json
import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vpd.programs.sampler_base import load_sampler
from vpd.programs.sampler_openai import OpenAISampler, parse_openai_spec


class FakeOpenAIServer:
    """Serves /v1/completions and /v1/chat/completions. ``script`` is a list of actions consumed one
    per request: an int HTTP status (error), ``"sleep"`` (answer after ``sleep_s``), ``"ok"``,
    ``"one"`` (ignore n: a single choice); when empty, requests succeed."""

    def __init__(self, script: list | None = None, sleep_s: float = 3.0, reply: str | None = None,
                 delay_s: float = 0.0) -> None:
        self.script = list(script or [])
        self.delay_s = delay_s  # every successful answer waits this long (to observe overlapping requests)
        self.in_flight = 0
        self.max_in_flight = 0
        self.reply = reply  # a fixed reply text for every choice (default: one echoing the prompt size)
        self.sleep_s = sleep_s
        self.requests: list[dict] = []
        self.headers: list[dict] = []
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # quiet
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers.get("content-length", 0))) or b"{}")
                with server.lock:
                    server.requests.append({"path": self.path, **body})
                    server.headers.append({k.lower(): v for k, v in self.headers.items()})
                    action = server.script.pop(0) if server.script else "ok"
                if isinstance(action, int):
                    payload = json.dumps({"error": {"message": f"fake error {action}", "type": "x"}}).encode()
                    self.send_response(action)
                    self.send_header("content-type", "application/json")
                    if action == 429:
                        self.send_header("retry-after", "0")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                if action == "sleep":
                    time.sleep(server.sleep_s)
                with server.lock:
                    server.in_flight += 1
                    server.max_in_flight = max(server.max_in_flight, server.in_flight)
                time.sleep(server.delay_s)
                with server.lock:
                    server.in_flight -= 1
                n = 1 if action == "one" else int(body.get("n", 1))
                prompt = body.get("prompt") or body["messages"][-1]["content"]
                texts = [server.reply if server.reply is not None else f"    return '{len(prompt)}-{i}'\n# Question: next"
                         for i in range(n)]
                if self.path.endswith("/chat/completions"):
                    choices = [{"index": i, "finish_reason": "stop",
                                "message": {"role": "assistant", "content": t}} for i, t in enumerate(texts)]
                    obj = "chat.completion"
                else:
                    choices = [{"index": i, "finish_reason": "stop", "text": t, "logprobs": None}
                               for i, t in enumerate(texts)]
                    obj = "text_completion"
                payload = json.dumps({"id": "x", "object": obj, "created": 0, "model": body.get("model"),
                                      "choices": choices,
                                      "usage": {"prompt_tokens": 7, "completion_tokens": 5 * n,
                                                "total_tokens": 7 + 5 * n}}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


FAST = dict(backoff_s=0.01, backoff_max_s=0.05, timeout_s=5.0)


def test_spec_parsing():
    assert parse_openai_spec("llama3:8b@http://127.0.0.1:8080/v1") == ("llama3:8b", "http://127.0.0.1:8080/v1")
    assert parse_openai_spec("gpt-4o-mini") == ("gpt-4o-mini", None)
    s = load_sampler("openai-chat:m@http://127.0.0.1:1/v1")
    assert isinstance(s, OpenAISampler) and s.mode == "chat"
    assert load_sampler("openai:m@http://127.0.0.1:1/v1").mode == "completions"


def test_success_n_in_one_request_and_stop(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-secret-123")
    with FakeOpenAIServer() as srv:
        s = load_sampler(f"openai:fake-model@{srv.url}", **FAST)
        out = s.generate(["abc", "abcdef"], n=3, temperature=0.7, max_tokens=32, stop=["\n# Question"], seed=5)
    assert [len(r) for r in out] == [3, 3]
    assert out[0][1].text == "    return '3-1'"  # stop string cut (server-side stop is ignored by the fake)
    assert out[1][0].text == "    return '6-0'"
    assert all(c.error is None and c.prompt_tokens == 7 for r in out for c in r)
    assert sum(c.completion_tokens for c in out[0]) == 15
    assert len(srv.requests) == 2  # one request per prompt for n=3
    assert {r["n"] for r in srv.requests} == {3}
    assert srv.requests[0]["model"] == "fake-model" and srv.requests[0]["path"] == "/v1/completions"
    assert srv.headers[0].get("authorization") == "Bearer sk-secret-123"
    assert "sk-secret" not in json.dumps(s.describe())


def test_chat_mode():
    with FakeOpenAIServer() as srv:
        s = load_sampler(f"openai-chat:m@{srv.url}", **FAST)
        out = s.generate(["hello"], n=2)
    assert srv.requests[0]["path"] == "/v1/chat/completions"
    assert srv.requests[0]["messages"] == [{"role": "user", "content": "hello"}]
    assert [c.text for c in out[0]] == ["    return '5-0'\n# Question: next", "    return '5-1'\n# Question: next"]


CHAT_REPLY = ("Here is the program:\n```python\ndef is_big(patch):\n    return patch.width > 10\n\n"
              "def execute_command(image):\n    image_patch = ImagePatch(image)\n"
              "    return 'yes' if is_big(image_patch) else 'no'\n```\nIt checks the width.\n# Question: next")


def test_chat_mode_keeps_a_fenced_program_with_helpers():
    """The prompt's completion stops ("\\ndef ", "\\n```", …) would cut a chat answer before its code;
    chat mode keeps only the next-example stop, so extraction sees the whole fenced program."""
    from vpd.programs.extract import extract_program
    from vpd.programs.prompt import CODE_PREFIX, STOP

    with FakeOpenAIServer(reply=CHAT_REPLY) as srv:
        chat = load_sampler(f"openai-chat:m@{srv.url}", **FAST)
        comp = load_sampler(f"openai:m@{srv.url}", **FAST)
        got = chat.generate(["q"], n=1, stop=list(STOP))[0][0]
        cut = comp.generate(["q"], n=1, stop=list(STOP))[0][0]
    assert srv.requests[0]["stop"] == ["\n# Question"]
    assert len(srv.requests[1]["stop"]) > 1
    ex = extract_program(got.text, prefix=CODE_PREFIX)
    assert ex.status == "ok" and "def is_big" in ex.program and "It checks" not in ex.program
    assert cut.text == "Here is the program:"  # completion mode cuts at the fence, as a base model needs


def test_generate_k_is_one_request_per_prompt_unless_greedy_is_split():
    with FakeOpenAIServer() as srv:
        s = load_sampler(f"openai:m@{srv.url}", **FAST)
        out = s.generate_k(["a", "bb"], k=4, temperature=0.7, greedy_first=True, seed=1)
        assert [len(r) for r in out] == [4, 4] and s.mixes_greedy_in_one_request
        assert sorted((r["n"], r["temperature"]) for r in srv.requests) == [(4, 0.7), (4, 0.7)]
        srv.requests.clear()
        split = load_sampler(f"openai:m@{srv.url}", split_greedy=True, **FAST)
        out = split.generate_k(["a"], k=4, temperature=0.7, greedy_first=True, seed=1)
    assert len(out[0]) == 4 and not split.mixes_greedy_in_one_request
    assert sorted((r["n"], r["temperature"]) for r in srv.requests) == [(1, 0.0), (3, 0.7)]


def test_server_ignoring_n_gets_more_requests():
    with FakeOpenAIServer(script=["one", "one", "one"]) as srv:
        out = load_sampler(f"openai:m@{srv.url}", **FAST).generate(["p"], n=3)
    assert len(out[0]) == 3 and all(c.ok for c in out[0])
    assert len(srv.requests) == 3


def test_429_then_success_is_retried():
    with FakeOpenAIServer(script=[429, 429]) as srv:
        s = load_sampler(f"openai:m@{srv.url}", **FAST)
        out = s.generate(["p"], n=2)
    assert all(c.ok for c in out[0]) and len(out[0]) == 2
    assert len(srv.requests) == 3 and s.stats["retries"] == 2


def test_500_until_giving_up_is_recorded_not_raised():
    with FakeOpenAIServer(script=[500] * 10) as srv:
        s = load_sampler(f"openai:m@{srv.url}", max_retries=2, **FAST)
        out = s.generate(["p", "q"], n=2)
    assert len(out) == 2 and all(len(r) == 2 for r in out)
    assert all(c.error and "500" in c.error and c.text == "" for r in out for c in r)
    assert len(srv.requests) == 6  # (1 + 2 retries) per prompt


def test_400_is_not_retried():
    with FakeOpenAIServer(script=[400, 400]) as srv:
        out = load_sampler(f"openai:m@{srv.url}", **FAST).generate(["p"])
    assert out[0][0].error and "400" in out[0][0].error
    assert len(srv.requests) == 1


def test_connection_refused():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    s = load_sampler(f"openai:m@http://127.0.0.1:{port}/v1", max_retries=1, **FAST)
    out = s.generate(["p"], n=2)
    assert [bool(c.error) for c in out[0]] == [True, True]
    assert "Connection" in out[0][0].error


def test_timeout_then_recorded():
    with FakeOpenAIServer(script=["sleep", "sleep"], sleep_s=1.5) as srv:
        s = OpenAISampler("m", srv.url, timeout_s=0.3, max_retries=1, backoff_s=0.01, backoff_max_s=0.02)
        out = s.generate(["p"])
    assert out[0][0].error and "Timeout" in out[0][0].error
    assert len(srv.requests) == 2


def test_timeout_then_success():
    with FakeOpenAIServer(script=["sleep"], sleep_s=1.5) as srv:
        s = OpenAISampler("m", srv.url, timeout_s=0.3, max_retries=2, backoff_s=0.01, backoff_max_s=0.02)
        out = s.generate(["p"])
    assert out[0][0].ok and out[0][0].text.startswith("    return")


def test_bounded_concurrency():
    with FakeOpenAIServer(script=["sleep"] * 6, sleep_s=0.3) as srv:
        s = OpenAISampler("m", srv.url, concurrency=2, timeout_s=5, backoff_s=0.01)
        t0 = time.perf_counter()
        out = s.generate([f"p{i}" for i in range(6)])
        took = time.perf_counter() - t0
    assert all(r[0].ok for r in out)
    # 6 requests of 0.3 s, at most 2 at a time -> at least 3 rounds (a lower bound, not a speed goal)
    assert took >= 0.85


def test_generate_inside_running_event_loop():
    import asyncio

    with FakeOpenAIServer() as srv:
        s = load_sampler(f"openai:m@{srv.url}", **FAST)

        async def main():
            return s.generate(["xy"])

        out = asyncio.run(main())
    assert out[0][0].text.startswith("    return '2-0'")


def test_server_stops_cap_defaults_to_the_openai_limit_and_is_an_option():
    from vpd.programs.prompt import STOP

    with FakeOpenAIServer() as srv:
        load_sampler(f"openai:m@{srv.url}").generate(["q"], n=1, stop=list(STOP))
        load_sampler(f"openai:m@{srv.url}?server_stops=16").generate(["q"], n=1, stop=list(STOP))
        load_sampler(f"openai:m@{srv.url}?server_stops=0").generate(["q"], n=1, stop=list(STOP))
    assert srv.requests[0]["stop"] == list(STOP)[:4]
    assert srv.requests[1]["stop"] == list(STOP) and len(STOP) > 4
    assert "stop" not in srv.requests[2]
