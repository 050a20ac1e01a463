"""The ``llm`` tool backend: ``llm_query`` answered by a vpd sampler (prompt, cleaning, errors, sharing)."""

from __future__ import annotations

from typing import Any, Sequence

import pytest

from vpd.programs.sampler_base import Completion, Sampler
from vpd.tools import load
from vpd.tools.backends.llm import LLMBackend, release_sampler, share_sampler, shared_sampler


class FakeSampler(Sampler):
    """Answers from a table keyed by a substring of the prompt; records the calls."""

    def __init__(self, table: dict[str, str]) -> None:
        super().__init__(name="fake")
        self.table, self.calls = table, []

    def generate(self, prompts: Sequence[str], *, n: int = 1, temperature: float = 0.0, max_tokens: int = 256,
                 stop: Sequence[str] | None = None, seed: int | None = None) -> list[list[Completion]]:
        self.calls.append({"prompts": list(prompts), "max_tokens": max_tokens, "stop": list(stop or [])})
        out = []
        for p in prompts:
            hit = next((v for k, v in self.table.items() if k in p), None)
            out.append([Completion(text=hit, prompt_tokens=1, completion_tokens=1, error=None) if hit is not None
                        else Completion(text="", prompt_tokens=1, completion_tokens=0, error="refused")])
        return out


@pytest.fixture()
def fake() -> Any:
    s = FakeSampler({"capital of France": " Paris\nQ: next question", "Tell me about": " It is a long\nstory.\n\nQ: x"})
    share_sampler("fake-spec", s)
    yield s
    release_sampler("fake-spec")


def test_short_and_long_answers(fake: FakeSampler) -> None:
    b = LLMBackend(llm="fake-spec")
    assert b.llm_query("What is the capital of France?", long_answer=False) == "Paris"
    assert fake.calls[-1]["prompts"] == ["Q: What is the capital of France? Answer with a single word or short phrase.\nA:"]
    assert fake.calls[-1]["max_tokens"] == 16 and "\nQ:" in fake.calls[-1]["stop"]
    assert b.llm_query("Tell me about it", long_answer=True) == "It is a long\nstory."
    assert fake.calls[-1]["max_tokens"] == 96


def test_batch_keeps_order_and_records_failures(fake: FakeSampler) -> None:
    b = LLMBackend(llm="fake-spec")
    out = b.run_batch("llm_query", [None, None, None], [
        {"question": "Tell me about cats", "long_answer": True},
        {"question": "unknown", "long_answer": False},
        {"question": "capital of France?", "long_answer": False}])
    assert out[0] == "It is a long\nstory." and out[2] == "Paris"
    assert isinstance(out[1], Exception) and "refused" in str(out[1])


def test_toolbox_spec_and_cache_tag(fake: FakeSampler) -> None:
    tb = load({"default": "shapes", "llm_query": {"backend": "llm", "llm": "fake-spec"}})
    assert tb.call_json("llm_query", None, question="capital of France", long_answer=False)[0] == "Paris"
    other = LLMBackend(llm="other-spec")
    assert LLMBackend(llm="fake-spec").cache_tag() != other.cache_tag()  # answers of different LLMs never mix
    assert shared_sampler("fake-spec") is fake


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_gemma_answers_offline() -> None:
    """The default: the packaged Gemma 3 270M base model answers a short question."""
    b = LLMBackend()
    try:
        ans = b.llm_query("Is the sky blue? Answer yes or no.", long_answer=False)
        assert isinstance(ans, str) and ans and "\n" not in ans and not ans.startswith("Q:")
    finally:
        release_sampler("gemma")
