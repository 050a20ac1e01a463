"""`vpd adapt`: meme data -> examples, the policy the program writer sees, contract-format mixtures,
program scores; and (slow) the whole pipeline in smoke mode through the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from vpd.adapt import (PROGRAM_QUESTION, _programs_answers, memes_to_examples, policy_brief, program_question,
                       read_rationales, write_mixture)
from vpd.benchmarks.moderation import POLICY, make_memes


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


def test_policy_brief_is_the_first_paragraph_with_its_list() -> None:
    policy = "# Title\n\nA post is **BAD** if:\n\n1. it insults;\n2. it `shouts`.\n\nEverything else is fine.\n"
    assert policy_brief(policy) == "A post is BAD if: 1. it insults; 2. it shouts."
    assert policy_brief("# only a heading\n") == ""
    long = "word " * 400
    brief = policy_brief(long, max_chars=50)
    assert len(brief) <= 53 and brief.endswith("...")


def test_program_writer_sees_the_policy(tmp_path: Path) -> None:
    make_memes(tmp_path, 5, seed=1)
    q = program_question((tmp_path / "policy.md").read_text())
    assert q.startswith(PROGRAM_QUESTION + " Policy: A meme is HATEFUL")
    assert "disgusting" in q and "Everything else" not in q and "\n" not in q
    assert program_question("") == PROGRAM_QUESTION
    assert POLICY.split("\n\n")[1].split()[0] == "A"  # the demo policy's first paragraph is the rule


#: A correct program for the demo policy, replayed instead of sampled so the smoke test is quick
#: and has verified traces (the real run samples with Gemma; see the report).
POLICY_PROGRAM = """def execute_command(image):
    image_patch = ImagePatch(image)
    text = image_patch.ocr().lower()
    insults = ["disgusting", "junk", "ugliest", "worthless", "trash"]
    if not any(word in text for word in insults):
        return "no"
    for color in ["red", "green", "blue", "yellow", "purple", "orange", "cyan"]:
        if color in text and image_patch.exists(color + " object"):
            return "yes"
    return "no"
"""


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_adapt_end_to_end_smoke(tmp_path: Path) -> None:
    """`vpd adapt --smoke` through the CLI: real OCR, sandbox, rationales, two students, three rows."""
    from typer.testing import CliRunner

    from vpd.cli import app

    data = tmp_path / "memes"
    make_memes(data, 30, seed=3)
    q = program_question((data / "policy.md").read_text())
    replay = tmp_path / "replay.jsonl"
    replay.write_text(json.dumps({"question": q, "choices": None, "completions": [POLICY_PROGRAM]}) + "\n")
    out = tmp_path / "run"
    r = CliRunner().invoke(app, ["adapt", "--policy", str(data / "policy.md"), "--data", str(data), "--out", str(out),
                                 "--llm", f"replay:{replay}", "--tools", "shapes,ocr=rapidocr", "--k", "1",
                                 "--max-labels", "12", "--smoke", "--workers", "1"])
    assert r.exit_code == 0, (r.output, r.exception)
    report = json.loads((out / "adapt_report.json").read_text())
    assert report["n_train_labels"] == 12 and 1 <= report["n_test"] <= 8
    assert [row["system"] for row in report["rows"]] == [
        "(a) programs alone", "(b) label-only student", "(c) rationale-trained student"]
    for row in report["rows"]:
        assert row["n"] == report["n_test"] and 0.0 <= row["accuracy"] <= 1.0
        assert (Path(row["results"]) / "results.json").is_file()
    # the policy program reads the caption with RapidOCR: it is verified on every training meme
    # OCR reads, and as a solver it beats chance on the test memes
    assert report["rationales"] >= 6
    programs = report["rows"][0]
    assert programs["accuracy"] >= 0.75
    mix = json.loads((out / "mix_rationale" / "manifest.json").read_text())["counts"]
    assert mix["train_rationale"] + mix["val_rationale"] == report["rationales"]
    label_mix = json.loads((out / "mix_label" / "manifest.json").read_text())["counts"]
    assert label_mix["train_rationale"] + label_mix["val_rationale"] == 0
    cand = json.loads((out / "synth" / "verified.jsonl").read_text().splitlines()[0])
    assert cand["example"]["question"] == q  # the program writer was asked with the policy
    for name in ("student_label", "student_rationale"):
        assert (out / name / "config.json").is_file()
    assert "| (c) rationale-trained student |" in (out / "adapt_report.md").read_text()
