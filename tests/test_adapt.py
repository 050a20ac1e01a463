"""`vpd adapt` building blocks: meme data -> examples, contract-format mixtures, program scores."""

from __future__ import annotations

import json
from pathlib import Path

from vpd.adapt import _programs_answers, memes_to_examples, read_rationales, write_mixture
from vpd.benchmarks.moderation import make_memes


def test_memes_to_examples_caps_labels(tmp_path: Path) -> None:
    make_memes(tmp_path, 30, seed=4)
    n_train = len((tmp_path / "train.jsonl").read_text().splitlines())
    exs = memes_to_examples(tmp_path / "train.jsonl", limit=5, seed=0, split="train")
    assert len(exs) == min(5, n_train)
    assert all(e.answer in ("yes", "no") and Path(e.image).is_absolute() and Path(e.image).is_file() for e in exs)
    assert memes_to_examples(tmp_path / "train.jsonl", limit=5, seed=0, split="train") == exs  # seeded


def test_mixtures_follow_the_contract(tmp_path: Path) -> None:
    make_memes(tmp_path / "m", 30, seed=4)
    exs = memes_to_examples(tmp_path / "m" / "train.jsonl", limit=None, seed=0, split="train")
    rats = {exs[0].id: "The caption reads 'red is the ugliest colour' and a red cube is at 10 20 30 40."}
    c_label = write_mixture(exs, rats, tmp_path / "mix_l", with_rationales=False, val_frac=0.1, seed=0)
    c_rat = write_mixture(exs, rats, tmp_path / "mix_r", with_rationales=True, val_frac=0.1, seed=0)
    assert c_label["train_rationale"] + c_label["val_rationale"] == 0
    assert c_rat["train_rationale"] + c_rat["val_rationale"] == 1
    assert c_label["train_label"] + c_label["val_label"] == len(exs)
    lines = [json.loads(l) for p in ("train", "val") for l in (tmp_path / "mix_r" / f"{p}.jsonl").read_text().splitlines()]
    r = next(l for l in lines if l["task"] == "rationale")
    assert r["prefix"] == "Is this meme hateful?\nExplain the rationale to answer the question."
    assert r["suffix"].endswith(f"So the answer is {exs[0].answer}.")
    lab = next(l for l in lines if l["task"] == "label")
    assert lab["prefix"].endswith("\nAnswer with a single word or phrase.") and lab["suffix"] in ("yes", "no")
    assert set(lab) >= {"id", "image", "prefix", "suffix", "task", "source", "weight", "example_id"}


def test_read_rationales_keeps_only_kept(tmp_path: Path) -> None:
    (tmp_path / "rationales.jsonl").write_text(
        json.dumps({"example": {"id": "1"}, "rationale": "a", "kept": True}) + "\n"
        + json.dumps({"example": {"id": "2"}, "rationale": "b", "kept": False}) + "\nnot json\n")
    assert read_rationales(tmp_path) == {"1": "a"}


def test_program_vote_share_is_the_score() -> None:
    out = _programs_answers({"7": {"id": "7", "prediction": "yes", "votes": {"yes": 3, "no": 1}}})
    assert out["7"]["score"] == 0.75
