"""Which tool exceptions are backend (infrastructure) failures and which are the program's."""

from __future__ import annotations

import pytest

from vpd.tools.errors import MissingWeights, ToolError, UnsupportedQuery
from vpd.tools.failures import backend_failure_text, is_backend_failure, is_backend_failure_text


def _raised_from(outer: BaseException, inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException:
            raise outer from None  # the context is kept even when the cause is suppressed
    except BaseException as exc:
        return exc


@pytest.mark.parametrize("exc", [
    MissingWeights("owl", "weights", "/nope/owl.pt"), MemoryError(), ConnectionRefusedError("refused"),
    TimeoutError("read timed out"), ImportError("no module named groundingdino"),
    RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB"), RuntimeError("cuDNN error: CUDNN_STATUS_NOT_INITIALIZED"),
])
def test_backend_failures(exc):
    assert is_backend_failure(exc)
    assert is_backend_failure_text(backend_failure_text(exc))


def test_torch_out_of_memory_is_a_backend_failure():
    import torch

    assert is_backend_failure(torch.OutOfMemoryError("CUDA out of memory"))


def test_a_tool_error_raised_while_a_server_was_down_is_a_backend_failure():
    import httpx
    import openai

    down = openai.APIConnectionError(request=httpx.Request("POST", "http://127.0.0.1:9/v1/chat/completions"))
    assert is_backend_failure(_raised_from(ToolError("vlm: gave up after 3 attempts"), down))


@pytest.mark.parametrize("exc", [
    ToolError("too many tool calls"), UnsupportedQuery("unknown word 'blorp'"), ValueError("bad box"),
    TypeError("query must be a string"), AttributeError("'int' object has no attribute 'lower'"),
    RuntimeError("shapes do not match"), KeyError("x"),
])
def test_program_caused_failures(exc):
    assert not is_backend_failure(exc)
    assert not is_backend_failure_text(f"{type(exc).__name__}: {exc}")


def test_explicit_declaration():
    class FakeDeviceLost(RuntimeError):
        backend_failure = True

    assert is_backend_failure(FakeDeviceLost("gone"))
