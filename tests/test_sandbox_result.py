"""The result channel: plain answers only, the host's checks of worker frames, the framing."""

from __future__ import annotations

import os

import pytest

from vpd.sandbox import protocol
from vpd.sandbox.tool_request import validate_call
from vpd.sandbox.result import ExecutionResult, is_plain
from vpd.tools.image_patch import ImageHandle, ImagePatch, answer_to_plain, llm_query, bind_client


class HostileStr(str):
    def __eq__(self, other):
        return True

    __hash__ = str.__hash__

    def __repr__(self):
        raise RuntimeError("hostile repr")


@pytest.mark.parametrize("value", [HostileStr("x"), [HostileStr("x")], {"a": HostileStr("x")},
                                   {HostileStr("k"): 1}, type("I", (int,), {})(3), {1, 2}, b"bytes"])
def test_subclasses_and_non_plain_types_refused(value):
    with pytest.raises(TypeError):
        answer_to_plain(value)


def test_patches_become_boxes():
    h = ImageHandle("i", 100, 50, client=None)  # type: ignore[arg-type]
    p = ImagePatch(h, 10, 5, 30, 25)
    assert answer_to_plain([p, (1, 2.5, None, True)]) == [{"box": [10, 25, 30, 45]}, [1, 2.5, None, True]]


def test_dict_keys_become_strings():
    assert answer_to_plain({1: "a", None: "b"}) == {"1": "a", "None": "b"}


def test_is_plain_rejects_subclass_and_depth():
    deep: list = []
    for _ in range(40):
        deep = [deep]
    assert is_plain({"a": [1, "b", None]}) and not is_plain([HostileStr("x")]) and not is_plain(deep)


def test_llm_query_context_never_formats_attributes():
    sent = []

    class Client:
        def call(self, tool, image_id, box, args):
            sent.append(args["question"])
            return "ok"

    bind_client(Client())
    try:
        llm_query("{{}}{.__class__}", context=1)
        llm_query("What is {}?", context="Paris")
    finally:
        bind_client(None)
    assert "<class" not in sent[0] and sent[1] == "What is Paris?"


@pytest.mark.parametrize("msg", [
    {"tool": "rm -rf", "args": {}},
    {"tool": "detect", "args": {"query": "x", "model_path": "/etc"}},
    {"tool": "detect", "args": {"query": "x"}, "box": [0, 0, 1]},
    {"tool": "detect", "args": {"query": "x"}, "box": [0, 0, 1, float("inf")]},
    {"tool": "detect", "args": {"query": "x"}, "image_id": 3},
    {"tool": "detect", "args": "query"},
])
def test_bad_tool_requests_refused(msg):
    with pytest.raises(ValueError):
        validate_call(msg)


def test_good_tool_request_passes():
    req = validate_call({"tool": "vqa", "image_id": "img0", "box": [0, 0, 5, 5], "args": {"question": "q?"}})
    assert req == {"tool": "vqa", "image_id": "img0", "box": [0, 0, 5, 5], "args": {"question": "q?"}}


def _pipe_with(data: bytes) -> protocol.FrameReader:
    import tempfile

    f = tempfile.TemporaryFile()
    f.write(data)
    f.seek(0)
    return protocol.FrameReader(os.dup(f.fileno()))


def test_frame_round_trip():
    r, w = os.pipe()
    protocol.write_frame(w, {"type": "x", "v": [1, "é"]})
    assert protocol.FrameReader(r).read(deadline=None) == {"type": "x", "v": [1, "é"]}


def test_oversized_frame_refused_before_reading():
    with pytest.raises(protocol.ProtocolError):
        _pipe_with((protocol.MAX_FRAME + 1).to_bytes(4, "big")).read()


def test_nesting_bomb_frame_refused():
    data = b"[" * 200_000 + b"]" * 200_000
    with pytest.raises(protocol.ProtocolError):
        _pipe_with(len(data).to_bytes(4, "big") + data).read()


def test_non_object_frame_refused():
    with pytest.raises(protocol.ProtocolError):
        _pipe_with((2).to_bytes(4, "big") + b"[]").read()


def test_closed_pipe_reported():
    with pytest.raises(protocol.ChannelClosed):
        _pipe_with(b"").read()


def test_read_deadline():
    import time

    r, _w = os.pipe()
    with pytest.raises(protocol.ChannelTimeout):
        protocol.FrameReader(r).read(deadline=time.monotonic() + 0.05)


def test_execution_result_defaults():
    r = ExecutionResult(status="timeout", error="x")
    assert not r.ok and r.trace.calls == () and ExecutionResult.from_dict(r.to_dict()) == r
