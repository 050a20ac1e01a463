"""The in-process transformers sampler on a tiny random-init causal LM (real loading path), and
one slow test on the packaged Gemma 3 270M."""

from __future__ import annotations

import pytest

from vpd.programs.sampler_base import load_sampler
from vpd.programs.sampler_transformers import TransformersSampler

CORPUS = ["def execute_command(image):\n    image_patch = ImagePatch(image)\n    return str(len(x))\n",
          "# Question: How many red cubes are there?\n", "bool_to_yesno(image_patch.exists('blue sphere'))\n"] * 20


@pytest.fixture(scope="module")
def tiny_model_dir(tmp_path_factory):
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    d = tmp_path_factory.mktemp("tiny_lm")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=320, min_frequency=1, special_tokens=["<eos>", "<pad>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<pad>")
    tok.save_pretrained(d)
    import torch

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=256,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():  # large logits -> no near-ties, so greedy is stable across batch shapes
        model.lm_head.weight.mul_(20.0)
    model.save_pretrained(d)
    return d


@pytest.fixture(scope="module")
def sampler(tiny_model_dir):
    return load_sampler(f"transformers:{tiny_model_dir}", batch_size=4)


PROMPTS = ["# Question: How many red cubes are there?\n", "def execute_command(image):\n",
           "x", "image_patch.exists('blue sphere') and bool_to_yesno(True)\n"]


def test_shapes_and_counts(sampler):
    out = sampler.generate(PROMPTS, n=3, temperature=0.9, max_tokens=12, seed=1)
    assert len(out) == 4 and all(len(r) == 3 for r in out)
    for p, r in zip(PROMPTS, out):
        for c in r:
            assert c.error is None
            assert 0 < c.completion_tokens <= 12
            assert c.prompt_tokens == sampler.count_tokens(p)
    assert isinstance(sampler, TransformersSampler) and sampler.describe()["parameters"] > 0


def test_left_padded_batch_matches_batch_of_one(sampler, tiny_model_dir):
    one = load_sampler(f"transformers:{tiny_model_dir}", batch_size=1)
    a = sampler.generate(PROMPTS, n=1, max_tokens=10)
    b = one.generate(PROMPTS, n=1, max_tokens=10)
    assert [r[0].text for r in a] == [r[0].text for r in b]
    assert sampler.stats["batches"] >= 1 and one.stats["batches"] >= 4


def test_greedy_n_repeats_without_recomputing(sampler):
    before = sampler.stats["sequences"]
    out = sampler.generate(PROMPTS[:2], n=4, temperature=0.0, max_tokens=8)
    assert all(len({c.text for c in r}) == 1 and len(r) == 4 for r in out)
    assert sampler.stats["sequences"] - before == 2


def test_seeded_sampling_is_reproducible(sampler):
    a = sampler.generate(PROMPTS, n=2, temperature=1.5, max_tokens=12, seed=7)
    b = sampler.generate(PROMPTS, n=2, temperature=1.5, max_tokens=12, seed=7)
    c = sampler.generate(PROMPTS, n=2, temperature=1.5, max_tokens=12, seed=8)
    texts = lambda out: [x.text for r in out for x in r]  # noqa: E731
    assert texts(a) == texts(b)
    assert texts(a) != texts(c)


def test_stop_strings_cut_and_end_early(sampler):
    full = sampler.generate([PROMPTS[1]], max_tokens=30)[0][0]
    assert len(full.text) > 6
    stop = full.text[len(full.text) // 2: len(full.text) // 2 + 3]
    cut = sampler.generate([PROMPTS[1]], max_tokens=30, stop=[stop])[0][0]
    assert cut.text == full.text[: full.text.find(stop)]
    assert cut.completion_tokens < full.completion_tokens


def test_too_long_prompt_is_an_error_not_an_exception(sampler):
    out = sampler.generate(["word " * 400, "x"], max_tokens=8)
    assert out[0][0].error and "context" in out[0][0].error


def test_missing_path_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="no model folder"):
        load_sampler(f"transformers:{tmp_path / 'nope'}")


@pytest.mark.slow
def test_packaged_gemma_writes_a_program():
    """The offline default end to end: prompt -> Gemma -> an extractable program (few tokens)."""
    from vpd.programs import build_program_prompt, sample_programs

    s = load_sampler("gemma", batch_size=2)
    try:
        assert s.context_tokens and s.context_tokens >= 8192
        prompt = build_program_prompt("How many green cubes are there?", tools=["detect", "count"])
        assert s.count_tokens(prompt.text) < 4000
        out = sample_programs(s, [prompt], k=2, temperature=0.7, max_tokens=40, seed=0, greedy_first=True)[0]
        assert len(out) == 2 and out[0].temperature == 0.0
        assert out[0].status == "ok", out[0].raw_completion
        assert "green cube" in out[0].program and "find(" in out[0].program
    finally:
        s.close()


def test_shared_prefix_cache_gives_the_same_greedy_text(tiny_model_dir):
    shared = "# Question: How many red cubes are there?\ndef execute_command(image):\n" * 3
    prompts = [shared + "x", shared + "image_patch.exists('blue", shared + "bool_to_yesno(", shared + "x"]
    plain = load_sampler(f"transformers:{tiny_model_dir}", batch_size=4, prefix_cache=False)
    cached = TransformersSampler(plain.model, plain.tokenizer, name="c", batch_size=4, min_prefix_tokens=8,
                                 extend_min_tokens=2)
    a = plain.generate(prompts, max_tokens=10)
    b = cached.generate(prompts, max_tokens=10)
    c = cached.generate(prompts[:2], n=2, temperature=0.0, max_tokens=10)  # reuses the cached prefix
    longer = [prompts[1] + " and x", prompts[1] + " or y"]  # extends the cached prefix
    before = cached.stats["prefill_tokens"]
    d = cached.generate(longer, max_tokens=10)
    assert len(cached._prefixes) >= 2  # the longer shared prefix was cached by extension
    assert cached.stats["prefill_tokens"] - before < cached.count_tokens(longer[0])
    assert [r[0].text for r in d] == [r[0].text for r in plain.generate(longer, max_tokens=10)]
    assert [r[0].text for r in a] == [r[0].text for r in b]
    assert [r[0].text for r in c] == [r[0].text for r in a[:2]]
    assert cached.stats["prefix_hits"] >= 1
    assert cached.stats["prefill_tokens"] < plain.stats["prefill_tokens"]
    assert [r[0].prompt_tokens for r in a] == [r[0].prompt_tokens for r in b]


def test_generate_k_decodes_the_greedy_candidate_in_the_sampled_batch(sampler):
    prompt = PROMPTS[0]
    greedy = sampler.generate([prompt], n=1, temperature=0.0, max_tokens=10)[0][0].text
    batches = sampler.stats["batches"]
    one = sampler.generate_k([prompt], k=4, temperature=1.5, greedy_first=True, max_tokens=10, seed=3)
    assert sampler.stats["batches"] - batches == 1  # greedy + 3 sampled rows in one batch of 4
    assert one[0][0].text == greedy
    rows = sampler.generate_k([prompt, PROMPTS[1]], k=3, temperature=1.5, greedy_first=True, max_tokens=10, seed=3)
    assert [len(r) for r in rows] == [3, 3]
    assert rows[0][0].text == greedy  # the arg-max row is the greedy continuation
    assert sampler.mixes_greedy_in_one_request
    again = sampler.generate_k([prompt, PROMPTS[1]], k=3, temperature=1.5, greedy_first=True, max_tokens=10, seed=3)
    assert [[c.text for c in r] for r in again] == [[c.text for c in r] for r in rows]  # seeded


def test_warm_pins_the_shared_prefix_and_keeps_the_greedy_text(tiny_model_dir):
    shared = "# Question: How many red cubes are there?\ndef execute_command(image):\n" * 3
    plain = load_sampler(f"transformers:{tiny_model_dir}", batch_size=4, prefix_cache=False)
    cached = TransformersSampler(plain.model, plain.tokenizer, name="c", batch_size=4, min_prefix_tokens=8,
                                 extend_min_tokens=2, prefix_cache_entries=1)
    cached.warm(shared)
    cached.warm(shared)  # idempotent
    pinned = set(cached._pinned)
    assert len(pinned) == 1 and len(next(iter(pinned))) < cached.count_tokens(shared) + 2
    warmed = cached.stats["prefill_tokens"]
    tails = ["x", "image_patch.exists('blue", "bool_to_yesno(", "return str(len(x))"]
    for tail in tails:  # more distinct prompts than cache entries: the pinned prefix survives
        a = plain.generate([shared + tail], max_tokens=8)[0][0].text
        b = cached.generate([shared + tail], max_tokens=8)[0][0].text
        assert a == b
    assert pinned <= set(cached._prefixes)
    # each prompt prefilled only beyond the pinned prefix
    assert cached.stats["prefill_tokens"] - warmed < sum(cached.count_tokens(shared + t) for t in tails) // 2


def test_dtype_resolution(monkeypatch):
    from vpd.programs.sampler_transformers import resolve_dtype

    assert resolve_dtype("bf16") == "bfloat16" and resolve_dtype("float32") == "float32"
    monkeypatch.setenv("VPD_LLM_DTYPE", "fp32")
    assert resolve_dtype(None) == "float32"
    monkeypatch.setenv("VPD_LLM_DTYPE", "auto")
    assert resolve_dtype(None) in ("bfloat16", "float32")
    with pytest.raises(ValueError, match="bfloat16"):
        resolve_dtype("int4")
