"""Chain-of-thought inference: the answer parser, both prediction modes, and their scores."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from vpd.datasets import read_examples
from vpd.distill.answer_sentence import parse_final_answer, split_answer_sentence
from vpd.distill.mixture import label_prefix, rationale_prefix, rationale_suffix
from vpd.distill.vlm_predict import ModePrediction, Predictor, predict_dataset, predict_modes, score_modes
from vpd.types import Example

sys.path.insert(0, str(Path(__file__).parent))

from student_fixtures import write_random_student  # noqa: E402


@pytest.mark.parametrize("text,answer", [
    ("There are 2 cubes, at 1 2 3 4 and 5 6 7 8. So the answer is 2.", "2"),
    ("Thus, the answer is yes", "yes"),  # no period
    ("Therefore the answer is: Yes!", "Yes"),
    ("So the answer is red. The cube is at 1 2 3 4", "red"),  # trailing text after the sentence
    ("So the answer is 3.5.", "3.5"),  # a decimal point is not a sentence end
    ("Asked what colour, the answer is blue. So the answer is B.", "B"),  # the last answer sentence wins
    ("So the answer is \"large\".", "large"),
    ("So the answer is two red cubes\nmore", "two red cubes"),
    ("hence, the answer is A", "A"),
    ("The cube at 1 2 3 4 is red.", None),  # no answer sentence: unparseable
    ("There are 2 cubes. So the answer is", None),  # cut off before the answer
    ("", None),
    (None, None),
])
def test_parse_final_answer(text, answer):
    assert parse_final_answer(text) == answer


def test_the_training_target_format_round_trips():
    target = rationale_suffix("There is one cube, at 1 2 3 4. Thus, the answer is 1.", "1")
    assert target == "There is one cube, at 1 2 3 4. So the answer is 1."
    assert parse_final_answer(target) == "1"
    assert split_answer_sentence(target) == ("There is one cube, at 1 2 3 4.", "So the answer is 1.")
    assert split_answer_sentence("2") == ("", "2")


def _examples(shapes_dir, n=6):
    examples, _ = read_examples(shapes_dir)
    return [e for e in examples if e.answer is not None][:n]


def test_score_modes_counts_right_wrong_unparsed_and_errors(shapes_dir):
    exs = _examples(shapes_dir, 4)
    wrong = "zzz-not-an-answer"
    preds = [ModePrediction(id=exs[0].id, direct=exs[0].answer, rationale="…", cot=exs[0].answer),
             ModePrediction(id=exs[1].id, direct=wrong, rationale="no answer sentence", cot=None),
             ModePrediction(id=exs[2].id, error="image: corrupt")]  # exs[3]: no prediction at all
    s = score_modes(exs, preds, benchmark="shapes")
    assert (s["direct"].scored, s["direct"].correct, s["direct"].unparsed, s["direct"].errors) == (4, 1, 0, 2)
    assert (s["cot"].scored, s["cot"].correct, s["cot"].unparsed, s["cot"].errors) == (4, 1, 1, 2)
    assert s["cot"].accuracy == 0.25 and s["cot"].to_dict()["accuracy"] == 0.25
    assert sum(n for _, n in s["cot"].by_type.values()) == 4
    assert sum(c for c, _ in s["cot"].by_type.values()) == 1
    with pytest.raises(ValueError, match="modes"):
        score_modes(exs, preds, modes=("beam",))


class FakePredictor(Predictor):
    """A fake student for the plumbing of :func:`predict_modes`: answers by prompt, no model."""

    def __init__(self, texts: dict[str, str]) -> None:
        from vpd.distill.vlm_tokenizer import train_bpe

        self.texts, self.batch, self.max_prefix, self.max_suffix = texts, 2, 8, 24
        self.tok = train_bpe(list(texts), vocab_size=300)
        self.model = type("M", (), {"config": type("C", (), {"vision": type("V", (), {"image_size": 8})})})()
        self.calls: list[tuple[int, int]] = []

    def generate(self, pixels, prompts, max_new_tokens, sampling=None):
        assert pixels.shape[0] == len(prompts)
        self.calls.append((len(prompts), max_new_tokens))
        return [self.texts[p] for p in prompts]


def test_predict_modes_prompts_each_mode_and_parses_the_rationale(shapes_dir, tmp_path):
    exs = _examples(shapes_dir, 3)
    broken = Example(id="broken", image=str(tmp_path / "missing.png"), question="How many cubes?", answer="1")
    texts = {}
    for e in exs:
        texts[label_prefix(e)] = str(e.answer)
        texts[rationale_prefix(e)] = f"I looked. So the answer is {e.answer}."
    texts[rationale_prefix(exs[1])] = "I looked but stopped"  # unparseable
    fake = FakePredictor(texts)
    seen: list[int] = []
    preds = predict_modes(fake, [exs[0], broken, exs[1], exs[2]], on_batch=lambda b: seen.append(len(b)))
    assert [p.id for p in preds] == [exs[0].id, "broken", exs[1].id, exs[2].id] and seen == [2, 2]
    assert preds[1].error and preds[1].direct is None and preds[1].cot is None
    assert preds[0].direct == str(exs[0].answer) and preds[0].cot == str(exs[0].answer)
    assert preds[2].rationale == "I looked but stopped" and preds[2].cot is None
    assert fake.calls == [(1, 16), (1, 24), (2, 16), (2, 24)]  # rationale budget = the trained max_suffix
    s = score_modes([exs[0], broken, exs[1], exs[2]], preds)
    assert (s["direct"].correct, s["direct"].errors) == (3, 1)
    assert (s["cot"].correct, s["cot"].unparsed, s["cot"].errors) == (2, 1, 1)
    only = predict_modes(fake, exs, modes=("cot",), max_rationale_tokens=40)
    assert all(p.direct is None for p in only) and fake.calls[-1] == (1, 40)


@pytest.mark.slow  # ~60 s on 2 busy cores: two decoders compile
def test_a_real_student_predicts_and_scores_both_modes(shapes_dir, tmp_path):
    ckpt = write_random_student(tmp_path / "student")
    out = tmp_path / "pred.jsonl"
    counts = predict_dataset(ckpt, shapes_dir, out, rationale=True, limit=5, batch=4, progress=False)
    lines = [json.loads(x) for x in out.read_text().splitlines()]
    exs = read_examples(shapes_dir)[0][:5]
    assert [x["id"] for x in lines] == [e.id for e in exs]
    assert all(isinstance(x["prediction"], str) and isinstance(x["rationale"], str) for x in lines)
    assert all("cot_prediction" in x and x["cot_prediction"] == parse_final_answer(x["rationale"]) for x in lines)
    preds = [ModePrediction(id=x["id"], direct=x["prediction"], rationale=x["rationale"], cot=x["cot_prediction"])
             for x in lines]
    scores = score_modes(exs, preds)
    assert counts["scored"] == scores["direct"].scored == scores["cot"].scored == 5
    assert counts["accuracy"] == round(scores["direct"].accuracy, 4)
    assert counts["cot_accuracy"] == round(scores["cot"].accuracy, 4)
    assert counts["cot_unparsed"] == scores["cot"].unparsed == sum(x["cot_prediction"] is None for x in lines)
    plain = predict_dataset(ckpt, shapes_dir, tmp_path / "plain.jsonl", limit=2, batch=4, progress=False)
    assert "cot_accuracy" not in plain and np.isfinite(plain["accuracy"])
    assert all("rationale" not in json.loads(x) for x in (tmp_path / "plain.jsonl").read_text().splitlines())


@pytest.mark.slow  # a subprocess `vpd predict --rationale` on a random student
def test_vpd_eval_scores_the_cot_mode(shapes_dir, tmp_path):
    from typer.testing import CliRunner

    from vpd.cli import app

    ckpt = write_random_student(tmp_path / "student")
    out = tmp_path / "eval"
    r = CliRunner().invoke(app, ["eval", "-b", "shapes", "--data", str(shapes_dir), "--split", "test",
                                 "--model", str(ckpt), "--mode", "cot", "--out", str(out)])
    assert r.exit_code == 0, (r.output, r.exception)
    d = json.loads((out / "results.json").read_text())
    assert d["source"]["mode"] == "cot" and d["counts"]["n"] > 0
    preds = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert len(preds) == d["counts"]["n"] and all("rationale" in p for p in preds)
    assert all(p["prediction"] == (parse_final_answer(p["rationale"]) or "") for p in preds)
    bad = CliRunner().invoke(app, ["eval", "-b", "shapes", "--data", str(shapes_dir), "--model", str(ckpt),
                                   "--mode", "beam", "--out", str(tmp_path / "bad")])
    assert bad.exit_code != 0 and "--mode" in bad.output
