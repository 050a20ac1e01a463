"""``openai_vlm`` against a real OpenAI-compatible server process over loopback.

The server is ``vpd tools serve --tools shapes`` (our toolbox behind /v1/chat/completions); the
client is the ``openai`` package inside the ``openai_vlm`` backend. Answers must equal the shapes
backend's own answers. Retry behaviour is tested against a FakeFlakyServer (a local HTTP server
that answers 429/503 before succeeding), rate limiting on the limiter's schedule.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from vpd.datasets import read_examples
from vpd.images import load_image
from vpd.tools import ToolError, UnsupportedQuery, load
from vpd.tools.backends.openai_vlm import RateLimiter


@pytest.fixture(scope="module")
def served():
    exe = Path(sys.executable).parent / "vpd"
    proc = subprocess.Popen([str(exe), "tools", "serve", "--tools", "shapes", "--port", "0"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    box: dict[str, str] = {}
    reader = threading.Thread(target=lambda: box.setdefault("line", proc.stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout=180)
    try:
        line = box.get("line", "")
        assert "serving" in line, f"server did not start: {line!r} {proc.stderr.read() if proc.poll() is not None else ''}"
        yield line.strip().split(" on ")[-1]  # http://127.0.0.1:PORT/v1
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()


def _vlm(url: str, **opts):
    return load({"vqa": {"backend": "openai_vlm", "model": "vpd-vqa", "caption_model": "vpd-caption",
                         "base_url": url, "max_retries": 1, "backoff_s": 0.01, **opts}}).backends["vqa"]


def test_vqa_and_caption_match_the_served_backend(served, shapes_dir):
    examples, _ = read_examples(shapes_dir)
    local = load("shapes").backends["vqa"]
    answerable = []
    for e in examples:
        try:
            answerable.append((e, local.vqa(load_image(e.image), e.question)))
        except UnsupportedQuery:
            continue
    examples = [e for e, _ in answerable[:6]]
    assert len(examples) >= 3
    remote = _vlm(served)
    for ex, expected in answerable[:6]:
        assert remote.vqa(load_image(ex.image), ex.question) == expected
    img = load_image(examples[0].image)
    assert remote.caption(img) == local.caption(img)
    batch = remote.vqa_batch([load_image(e.image) for e in examples], [{"question": e.question} for e in examples])
    assert batch == [local.vqa(load_image(e.image), e.question) for e in examples]
    assert remote.stats["retries"] == 0 and remote.stats["requests"] >= 2 * len(examples) + 1


def test_protocol_errors_are_clear_and_not_retried(served, shapes_dir):
    examples, _ = read_examples(shapes_dir)
    img = load_image(examples[0].image)
    remote = _vlm(served)
    with pytest.raises(ToolError, match="HTTP 400.*UnsupportedQuery"):
        remote.vqa(img, "what is the meaning of life")
    wrong = _vlm(served, model="gpt-nonexistent")
    with pytest.raises(ToolError, match="HTTP 404.*unknown model 'gpt-nonexistent'"):
        wrong.vqa(img, "how many cubes are there?")
    llm = load({"llm_query": {"backend": "openai_vlm", "model": "vpd", "base_url": served, "max_retries": 0}})
    with pytest.raises(ToolError, match="no 'llm_query' tool"):
        llm.llm_query("capital of France?")
    assert remote.stats["retries"] == 0 and wrong.stats["retries"] == 0


def test_openai_client_lists_models(served):
    from openai import OpenAI

    ids = {m.id for m in OpenAI(base_url=served, api_key="EMPTY").models.list().data}
    assert {"vpd", "vpd-vqa", "vpd-caption"} <= ids


class FakeFlakyServer:
    """Answers the first ``failures`` chat requests with ``status`` (Retry-After: 0), then succeeds."""

    def __init__(self, failures: int, status: int = 429) -> None:
        self.failures, self.status, self.seen = failures, status, []
        outer = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *a):
                return

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.seen.append(body)
                if len(outer.seen) <= outer.failures:
                    data = json.dumps({"error": {"message": "slow down", "type": "rate_limit"}}).encode()
                    self.send_response(outer.status)
                    self.send_header("Retry-After", "0")
                else:
                    data = json.dumps({"id": "x", "object": "chat.completion", "created": 0, "model": body["model"],
                                       "choices": [{"index": 0, "finish_reason": "stop",
                                                    "message": {"role": "assistant", "content": " blue "}}]}).encode()
                    self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), H)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.mark.parametrize("status", [429, 503])
def test_retries_with_backoff_then_succeeds(status):
    from PIL import Image

    fake = FakeFlakyServer(failures=2, status=status)
    try:
        be = _vlm(fake.url, max_retries=3, backoff_s=0.001)
        assert be.vqa(Image.new("RGB", (8, 8), "blue"), "what colour?") == "blue"
        assert be.stats["retries"] == 2 and len(fake.seen) == 3
        content = fake.seen[-1]["messages"][0]["content"]
        assert content[0]["image_url"]["url"].startswith("data:image/png;base64,")
        assert content[1]["text"].startswith("what colour?\nAnswer with a single word or phrase.")
        be2 = _vlm(fake.url, max_retries=0)
        fake.seen.clear()
        with pytest.raises(ToolError, match="gave up after 1 attempts"):
            be2.vqa(Image.new("RGB", (8, 8)), "q")
    finally:
        fake.close()


def test_rate_limiter_spaces_requests():
    import time

    lim = RateLimiter(per_minute=600)  # one every 0.1 s
    t0 = time.monotonic()
    for _ in range(3):
        lim.acquire()
    assert lim._next >= t0 + 3 * 0.1 - 1e-9  # the next free slot is three intervals on
    assert RateLimiter(0).acquire() == 0.0
