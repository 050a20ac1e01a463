"""Sampler options in the spec string (``SPEC?key=value&…``): parsing, secrets refused, unknown
names named, options reaching the sampler, and resume allowed across option changes only."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from vpd.cli import app
from vpd.programs.samplers import SamplerOptionError, load_sampler, parse_spec, sampler_identity, split_options
from vpd.runs import ConfigMismatchError, RunStore
from vpd.synth_config import RESUME_COMPARE


def test_split_options_parses_json_values_and_leaves_plain_specs_alone():
    base, opts = split_options("openai:qwen@http://h:8000/v1?concurrency=16&timeout_s=2.5&split_greedy=true"
                               "&mode=chat&context_tokens=null")
    assert base == "openai:qwen@http://h:8000/v1"
    assert opts == {"concurrency": 16, "timeout_s": 2.5, "split_greedy": True, "mode": "chat", "context_tokens": None}
    assert split_options("gemma") == ("gemma", {})
    assert split_options("transformers:/models/a?b/c") == ("transformers:/models/a?b/c", {})  # not key=value pairs
    assert parse_spec("gemma?batch_size=4") == ("gemma", "")
    assert sampler_identity("openai:m@http://h/v1?concurrency=2") == sampler_identity("openai:m@http://h/v1")


@pytest.mark.parametrize("name", ["api_key", "apikey", "key", "token", "hf_token", "secret", "password"])
def test_secret_options_are_refused(name):
    with pytest.raises(SamplerOptionError, match="environment variable"):
        split_options(f"openai:m@http://h/v1?{name}=sk-123")


def test_allowed_names_that_only_look_like_secrets():
    _, opts = split_options("openai:m@http://h/v1?api_key_env=MY_KEY&max_tokens=5")
    assert opts == {"api_key_env": "MY_KEY", "max_tokens": 5}


def test_options_reach_the_sampler_and_explicit_ones_win():
    s = load_sampler("openai:m@http://127.0.0.1:9/v1?concurrency=3&timeout_s=2.5&context_tokens=4096",
                     timeout_s=7.0)
    d = s.describe()
    assert (d["concurrency"], d["timeout_s"], d["context_tokens"]) == (3, 7.0, 4096)
    assert s.context_tokens == 4096


def test_unknown_option_is_named():
    with pytest.raises(SamplerOptionError, match="no option 'bogus'"):
        load_sampler("openai:m@http://127.0.0.1:9/v1?bogus=1")
    with pytest.raises(SamplerOptionError, match="takes no options"):
        load_sampler("replay:/nowhere.jsonl?concurrency=2")


def test_resume_may_change_options_but_not_the_model(tmp_path):
    root = tmp_path / "run"
    RunStore.open(root, {"llm": "openai:m@http://h/v1?concurrency=2"}).close()
    RunStore.open(root, {"llm": "openai:m@http://h/v1?concurrency=16&timeout_s=9"}, resume=True,
                  check_keys=("llm",), compare_as=RESUME_COMPARE).close()
    with pytest.raises(ConfigMismatchError, match="llm"):
        RunStore.open(root, {"llm": "openai:other@http://h/v1?concurrency=16"}, resume=True,
                      check_keys=("llm",), compare_as=RESUME_COMPARE)


def test_synth_cli_rejects_a_bad_spec_before_loading_anything(tmp_path):
    data = tmp_path / "examples.jsonl"
    data.write_text("")
    runner = CliRunner()
    res = runner.invoke(app, ["synth", "--data", str(data), "--out", str(tmp_path / "r"),
                              "--llm", "openai:m@http://h/v1?api_key=sk-1"])
    assert res.exit_code == 2 and "environment variable" in res.output and "sk-1" not in res.output
    res = runner.invoke(app, ["synth", "--data", str(data), "--out", str(tmp_path / "r"), "--llm", "gemmma"])
    assert res.exit_code == 2 and "did you mean" in res.output
    assert not (tmp_path / "r").exists()
