"""sample_programs: greedy first, extraction, raw text kept, sampler errors recorded."""

from __future__ import annotations

from vpd.programs.prompt import CODE_PREFIX, STOP, build_program_prompt
from vpd.programs.sampler_base import SAMPLERS, Completion, Sampler, load_sampler, truncate_at_stop
from vpd.programs.sampling import sample_programs


class FakeScriptedSampler(Sampler):
    """Returns scripted texts; records the calls (a stand-in for the LLM in this unit test only)."""

    kind = "fake"

    def __init__(self, texts, error=None):
        super().__init__(name="fake")
        self.texts, self.error, self.calls = list(texts), error, []

    def generate(self, prompts, *, n=1, temperature=0.0, max_tokens=256, stop=None, seed=None):
        self.calls.append({"n": n, "temperature": temperature, "stop": stop, "seed": seed})
        if self.error:
            return [[Completion(text="", error=self.error)] * n for _ in prompts]
        return [[Completion(text=truncate_at_stop(self.texts[(i + j) % len(self.texts)], stop)[0],
                            prompt_tokens=10, completion_tokens=5) for j in range(n)] for i in range(len(prompts))]


def test_greedy_first_then_sampled_and_extraction():
    prompt = build_program_prompt("How many red cubes are there?", tools=["detect"], k_examples=1)
    s = FakeScriptedSampler(["    return str(len(image_patch.find('red cube')))\n# Question: next",
                             "The image has cubes.", "    return (("])
    out = sample_programs(s, [prompt, prompt.text], k=3, temperature=0.8, greedy_first=True, seed=4)
    assert [c["temperature"] for c in s.calls] == [0.0, 0.8] and s.calls[1]["n"] == 2
    assert s.calls[0]["seed"] == 4 and s.calls[1]["seed"] == 5
    assert set(STOP) <= set(s.calls[0]["stop"])
    assert len(out) == 2 and all(len(r) == 3 for r in out)
    first = out[0][0]
    assert first.status == "ok" and first.temperature == 0.0
    assert first.program == CODE_PREFIX + "    return str(len(image_patch.find('red cube')))\n"
    assert first.raw_completion == "    return str(len(image_patch.find('red cube')))"
    statuses = [c.status for r in out for c in r]
    assert {"ok", "no_code", "syntax"} <= set(statuses)
    assert all(c.raw_completion is not None for r in out for c in r)


def test_sampler_error_is_recorded():
    out = sample_programs(FakeScriptedSampler([], error="APIConnectionError: refused"), ["p"], k=2)
    assert [c.status for c in out[0]] == ["llm_error", "llm_error"]
    assert out[0][0].program is None and "refused" in out[0][0].error


def test_registry_lookup_suggests_names():
    import pytest

    from vpd.registry import UnknownNameError

    load_sampler  # noqa: B018 (imports the sampler modules)
    with pytest.raises(UnknownNameError, match="did you mean 'openai'"):
        load_sampler("opnai:m@http://x")
    assert {"gemma", "openai", "openai-chat", "transformers", "llamacpp"} <= set(SAMPLERS.names())


def test_llamacpp_missing_is_a_clear_error(tmp_path):
    import importlib.util

    import pytest

    if importlib.util.find_spec("llama_cpp") is None:
        with pytest.raises(RuntimeError, match="pip install llama-cpp-python"):
            load_sampler(f"llamacpp:{tmp_path / 'm.gguf'}")
    else:
        with pytest.raises(FileNotFoundError):
            load_sampler(f"llamacpp:{tmp_path / 'm.gguf'}")
