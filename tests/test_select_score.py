"""`--select score`: the LLM's own score of each program (mean token log-probability) from the
transformers and openai samplers, stored per candidate and used to pick among correct programs;
`--recipe vpd-paper`."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from vpd.programs.sampler_base import Completion, load_sampler, mean_logprob
from vpd.programs.sampler_openai import choice_mean_logprob
from vpd.programs.token_logprobs import LogprobRecorder
from vpd.selection import select
from vpd.synth_recipes import SYNTH_RECIPES, apply_recipe
from vpd.types import Candidate, Verdict

CORPUS = ["def execute_command(image):\n    image_patch = ImagePatch(image)\n    return str(len(x))\n",
          "# Question: How many red cubes are there?\n"] * 10


def _cand(i, passed, lp):
    return Candidate(example_id="e", index=i, program=f"return {i}", status="ok", answer=str(i), mean_logprob=lp,
                     verdict=Verdict(strict=passed, lenient=passed, checker="x", category="none" if passed else "wrong_answer"))


def test_score_picks_the_highest_scored_passing_program():
    cands = [_cand(0, True, -1.5), _cand(1, False, -0.1), _cand(2, True, -0.4), _cand(3, True, None)]
    assert select(cands, "score").index == 2  # candidate 1 scores higher but is wrong
    assert select(cands, "first").index == 0
    assert select([_cand(0, True, None), _cand(1, True, -9.0)], "score").index == 1  # unscored last
    assert select([_cand(0, True, None), _cand(1, True, None)], "score").index == 0
    assert select([_cand(0, False, -0.1)], "score") is None
    assert Candidate.from_json(_cand(0, True, -0.25).to_json()).mean_logprob == -0.25


def test_mean_logprob_helper():
    assert mean_logprob([-1.0, None, -3.0]) == -2.0
    assert mean_logprob([]) is None and mean_logprob(None) is None
    assert mean_logprob([float("-inf")]) is None


@pytest.fixture(scope="module")
def tiny_dir(tmp_path_factory):
    import torch
    from tokenizers import ByteLevelBPETokenizer
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    d = tmp_path_factory.mktemp("tiny_lm_score")
    bpe = ByteLevelBPETokenizer()
    bpe.train_from_iterator(CORPUS, vocab_size=300, min_frequency=1, special_tokens=["<eos>", "<pad>"])
    tok = PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="<eos>", pad_token="<pad>")
    tok.save_pretrained(d)
    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
                      eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id, bos_token_id=None)
    model = LlamaForCausalLM(cfg)
    with torch.no_grad():
        model.lm_head.weight.mul_(4.0)
    model.save_pretrained(d)
    return d


def _teacher_forced(model, seq, start):
    """log p(seq[t] | seq[:t]) for t >= start, by one forward pass."""
    import torch

    with torch.inference_mode():
        logp = torch.log_softmax(model(input_ids=seq[None]).logits[0].float(), dim=-1)
    return [float(logp[t - 1, seq[t]]) for t in range(start, len(seq))]


def test_recorder_matches_teacher_forcing_when_sampling_at_temperature(tiny_dir):
    import torch
    from transformers import AutoModelForCausalLM, LogitsProcessorList

    model = AutoModelForCausalLM.from_pretrained(tiny_dir).eval()
    ids = torch.tensor([[5, 9, 17, 3, 8], [7, 7, 2, 11, 4]])
    rec = LogprobRecorder()
    torch.manual_seed(3)
    out = model.generate(input_ids=ids, attention_mask=torch.ones_like(ids), do_sample=True, temperature=0.7,
                         top_k=0, top_p=1.0, max_new_tokens=6, pad_token_id=1,
                         logits_processor=LogitsProcessorList([rec]))
    got = rec.finish(out[:, -1])
    P = ids.shape[1]
    for row in range(2):
        new = out[row, P:].tolist()
        used = next((j + 1 for j, t in enumerate(new) if t == model.config.eos_token_id), len(new))  # eos counts
        want = _teacher_forced(model, out[row, :P + used], P)
        assert got[row][:used] == pytest.approx(want, abs=1e-4)
        # the sampling distribution (logits / 0.7) gives other numbers: the score is the untempered model's
        with torch.inference_mode():
            tempered = torch.log_softmax(model(input_ids=out[row, :P + 1][None]).logits[0, -2].float() / 0.7, -1)
        assert abs(float(tempered[out[row, P]]) - got[row][0]) > 1e-3


def test_transformers_sampler_returns_the_mean_logprob(tiny_dir):
    import torch

    sampler = load_sampler(f"transformers:{tiny_dir}", batch_size=4, prefix_cache=False)
    prompt = "# Question: How many red cubes are there?\n"
    greedy = sampler.generate([prompt], n=1, temperature=0.0, max_tokens=8)[0][0]
    # our own greedy loop, token by token, over the same number of tokens
    tok, model = sampler.tokenizer, sampler.model
    seq = torch.tensor(tok(prompt)["input_ids"])
    lps = []
    with torch.inference_mode():
        for _ in range(greedy.completion_tokens):
            logp = torch.log_softmax(model(input_ids=seq[None]).logits[0, -1].float(), dim=-1)
            t = int(logp.argmax())
            lps.append(float(logp[t]))
            seq = torch.cat([seq, torch.tensor([t])])
    assert greedy.completion_tokens > 0
    assert greedy.mean_logprob == pytest.approx(sum(lps) / len(lps), abs=1e-4)
    rows = sampler.generate_k([prompt], k=3, temperature=0.9, greedy_first=True, max_tokens=8, seed=2)[0]
    assert rows[0].mean_logprob == pytest.approx(greedy.mean_logprob, abs=1e-4)  # the greedy row in the batch
    assert all(c.mean_logprob is not None and c.mean_logprob <= 0 for c in rows)


class FakeLogprobServer:
    """A loopback OpenAI-protocol server whose choices carry token log-probabilities."""

    def __init__(self, with_logprobs=True):
        self.bodies = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *a):  # silent: the test reads server.bodies instead
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["content-length"])))
                server.bodies.append(body)
                n = int(body.get("n", 1))
                if self.path.endswith("/chat/completions"):
                    choices = [{"index": i, "finish_reason": "stop", "message": {"role": "assistant", "content": "x"},
                                "logprobs": {"content": [{"token": "x", "logprob": -0.5 * (i + 1), "bytes": None,
                                                          "top_logprobs": []}]} if with_logprobs else None}
                               for i in range(n)]
                else:
                    choices = [{"index": i, "finish_reason": "stop", "text": "    return 1\n",
                                "logprobs": {"tokens": ["a", "b"], "token_logprobs": [-1.0, -2.0 - i],
                                             "top_logprobs": None, "text_offset": [0, 1]} if with_logprobs else None}
                               for i in range(n)]
                payload = json.dumps({"id": "x", "object": "text_completion", "created": 0, "model": "m",
                                      "choices": choices, "usage": {"prompt_tokens": 3, "completion_tokens": 2 * n,
                                                                    "total_tokens": 3 + 2 * n}}).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def test_openai_sampler_requests_and_returns_logprobs():
    srv = FakeLogprobServer()
    try:
        out = load_sampler(f"openai:m@{srv.url}").generate(["p"], n=2, temperature=0.5, max_tokens=4)[0]
        assert [c.mean_logprob for c in out] == [pytest.approx(-1.5), pytest.approx(-2.0)]
        assert srv.bodies[-1]["logprobs"] == 1
        chat = load_sampler(f"openai-chat:m@{srv.url}").generate(["p"], n=2, temperature=0.5, max_tokens=4)[0]
        assert [c.mean_logprob for c in chat] == [pytest.approx(-0.5), pytest.approx(-1.0)]
        assert srv.bodies[-1]["logprobs"] is True
        off = load_sampler(f"openai:m@{srv.url}?logprobs=false").generate(["p"], n=1, max_tokens=4)[0]
        assert "logprobs" not in srv.bodies[-1] and off[0].mean_logprob == pytest.approx(-1.5)  # the server sent them anyway
    finally:
        srv.close()
    bare = FakeLogprobServer(with_logprobs=False)
    try:
        assert load_sampler(f"openai:m@{bare.url}").generate(["p"], n=1)[0][0].mean_logprob is None
    finally:
        bare.close()
    assert choice_mean_logprob(type("C", (), {"logprobs": None})()) is None


def test_synth_stores_the_score_and_selects_by_it(tmp_path):
    from tests.test_synth import FakeExecutor, make_data, ret
    from vpd.runs import read_candidates, read_verified
    from vpd.synth import SynthConfig, run_synth
    from vpd.synth_writer import Sample

    class ScoredWriter:
        """Four programs per question with fixed scores: 0 and 2 answer right, 2 scores higher."""

        def sample(self, questions, k, *, seed):
            progs = [ret("2"), ret("3"), "    x = 1\n" + ret("2"), ret("2")]
            scores = [-2.0, -0.1, -0.5, None]
            return [[Sample(raw=p, program="def execute_command(image):\n" + p, mean_logprob=s)
                     for p, s in zip(progs, scores)][:k] for _ in questions]

    data = make_data(tmp_path / "data", [("How many cubes are there?", "2", "count_simple")])
    for rule, want in (("score", 2), ("first", 0)):
        cfg = SynthConfig(data=str(data), out=str(tmp_path / rule), k=4, select=rule, progress=False, cache="off")
        run_synth(cfg, writer=ScoredWriter(), executor=FakeExecutor())
        assert [c.index for _, c in read_verified(tmp_path / rule)] == [want]
    stored = {c.index: c.mean_logprob for _, c, _ in read_candidates(tmp_path / "score")}
    assert stored == {0: -2.0, 1: -0.1, 2: -0.5, 3: None}


def test_vpd_paper_recipe_fills_in_but_explicit_options_win():
    assert apply_recipe("vpd-paper", {"k": None, "temperature": 0.7, "judge": False, "select": "first"}) == \
        {"k": 5, "temperature": 0.5, "judge": True, "select": "score"}
    got = apply_recipe("vpd-paper", {"k": 2, "temperature": 0.7, "judge": False, "select": "first"}, {"k", "select"})
    assert got == {"k": 2, "temperature": 0.5, "judge": True, "select": "first"}
    assert apply_recipe(None, {"k": 3}) == {"k": 3}
    with pytest.raises(KeyError, match="vpd-paper"):
        apply_recipe("vpd-papr", {})
    assert "vpd-paper" in SYNTH_RECIPES


def test_cli_recipe_reaches_the_run_config(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import vpd.synth as synth_mod
    from vpd.cli import app
    from tests.test_synth import make_data

    seen = {}

    def fake_run_synth(cfg):  # stands in for the whole stage: the test is about option handling
        seen["cfg"] = cfg
        raise KeyboardInterrupt

    monkeypatch.setattr(synth_mod, "run_synth", fake_run_synth)
    data = make_data(tmp_path / "d", [("How many cubes are there?", "2", "count_simple")])
    r = CliRunner().invoke(app, ["synth", "--data", str(data), "--out", str(tmp_path / "r"), "--recipe", "vpd-paper",
                                 "--temperature", "0.9", "--quiet"])
    cfg = seen["cfg"]
    assert (cfg.k, cfg.temperature, cfg.judge, cfg.select, cfg.recipe) == (5, 0.9, True, "score", "vpd-paper"), r.output
    r = CliRunner().invoke(app, ["synth", "--data", str(data), "--out", str(tmp_path / "r"), "--recipe", "nope"])
    assert r.exit_code == 2 and "vpd-paper" in r.output
