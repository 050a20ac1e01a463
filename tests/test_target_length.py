"""Target lengths from the data, and shortening that never cuts the answer (unit + a real mixture)."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).parent))

from distill_fixtures import make_shapes_run  # noqa: E402

from vpd.distill.answer_sentence import split_answer_sentence  # noqa: E402
from vpd.distill.target_length import choose_lengths, covering  # noqa: E402
from vpd.distill.target_shorten import ShorteningCounts, shorten_box_lists, shorten_target  # noqa: E402
from vpd.distill.vlm_preprocess import encode_example, shortening_counts  # noqa: E402
from vpd.distill.vlm_tokenizer import train_bpe  # noqa: E402

LONG = ("There are 6 cubes, at 1 2 3 4, 5 6 7 8, 9 10 11 12, 13 14 15 16, 17 18 19 20 and 21 22 23 24. "
        "The red cube is at 1 2 3 4. Counting red cubes gives 1. So the answer is 1.")


def by_chars(n: int):
    return lambda text: len(text) <= n


def test_box_lists_keep_their_first_boxes_and_say_how_many_were_left_out():
    text, n = shorten_box_lists(LONG, 2)
    assert n == 1
    assert "at 1 2 3 4, 5 6 7 8 and 4 more." in text
    assert "The red cube is at 1 2 3 4." in text  # a single box is not a list
    # a list written with ", and" and one inside a longer run of numbers
    assert shorten_box_lists("at 1 2 3 4, 5 6 7 8, and 9 9 9 9.", 1)[0] == "at 1 2 3 4 and 2 more."
    assert shorten_box_lists("ids 1 2 3 4 5 6 7 8 9", 1) == ("ids 1 2 3 4 5 6 7 8 9", 0)


def test_shortening_order_box_lists_then_middle_sentences_then_a_middle_cut():
    assert shorten_target(LONG, by_chars(len(LONG))).method == "none"
    s = shorten_target(LONG, by_chars(150))
    assert s.method == "box_lists" and s.box_lists == 1 and "9 10 11 12 and 3 more." in s.text  # keeps 4, then 3
    s = shorten_target(LONG, by_chars(100))
    assert s.method == "sentences" and s.sentences_dropped == 1
    assert s.text == "There are 6 cubes, at 1 2 3 4 and 5 more. Counting red cubes gives 1. So the answer is 1."
    s = shorten_target(LONG, by_chars(60))
    assert s.method == "cut" and s.cut and "..." in s.text and len(s.text) <= 60
    assert not re.search(r"\.\.\. \d+ \d+ \d+ [^\d]", s.text)  # boxes are cut whole, never into fragments
    for budget in (150, 100, 60, 40, 25, 19):
        assert shorten_target(LONG, by_chars(budget)).text.endswith("So the answer is 1.")
    s = shorten_target(LONG, by_chars(19))
    assert s.text == "So the answer is 1." and not s.answer_cut
    s = shorten_target(LONG, by_chars(10))  # the answer alone does not fit: said so, never hidden
    assert s.answer_cut and s.text == "So the answer is 1."


def test_encode_example_keeps_the_answer_and_eos_and_counts_the_shortening():
    tok = train_bpe([LONG, "How many red cubes?\n"] * 4, vocab_size=400)
    n_answer = len(tok.encode("So the answer is 1.")) + 1
    for max_suffix in (n_answer, n_answer + 5, 24, 40):
        enc = encode_example(tok, "How many red cubes?", LONG, max_prefix=16, max_suffix=max_suffix)
        ids = enc.tokens[enc.suffix]
        assert ids[-1] == tok.eos_id and len(ids) <= max_suffix
        assert tok.decode(ids).endswith("So the answer is 1.")
        assert enc.truncated and enc.shortening.shortened and not enc.shortening.answer_cut
    cut = encode_example(tok, "How many red cubes?", LONG, max_prefix=16, max_suffix=n_answer - 1)
    assert cut.shortening.answer_cut and cut.tokens[cut.suffix][-1] == tok.eos_id
    counts = shortening_counts([cut, encode_example(tok, "q", "1", 8, 8)])
    assert counts.targets == 2 and counts.shortened == 1 and counts.answers_cut == 1
    with pytest.raises(ValueError, match="max_suffix"):
        encode_example(tok, "q", "1", 8, 0)


def test_covering_is_an_exact_order_statistic():
    a = np.arange(1, 101)
    assert covering(a, 0.99) == 99 and covering(a, 1.0) == 100 and covering(a, 0.5) == 50
    assert covering(np.array([3]), 0.99) == 3
    with pytest.raises(ValueError):
        covering(a, 0.0)


def test_counts_line_reports_methods():
    c = ShorteningCounts.of([shorten_target(LONG, by_chars(n)) for n in (400, 150, 100, 60)])
    assert (c.targets, c.shortened, c.box_list_targets, c.sentence_targets, c.cut_targets) == (4, 3, 1, 1, 1)
    assert c.line().startswith("3 of 4 targets shortened (3 box lists, 3 sentences dropped, 1 cut mid-sentence)")
    assert c.line().endswith("0 answers cut")


@pytest.fixture(scope="module")
def real_mixture(tmp_path_factory):
    """A mixture built with the project's own pipeline: programs run on shapes, template rationales, LSKD."""
    from vpd.distill.lskd_run import LskdConfig, run_lskd
    from vpd.distill.mixture import build_mixture, read_mixture
    from vpd.distill.rationalize import rationalize_run

    root = tmp_path_factory.mktemp("targets")
    data, run, counts = make_shapes_run(root, n=30, seed=5)
    rationalize_run(run, show_progress=False)
    lskd = root / "lskd"
    run_lskd(LskdConfig(data=str(data), out=str(lskd), llm=None, negatives=False, max_images=4, per_image=3),
             show_progress=False)
    build_mixture([run, lskd], root / "mix", val_frac=0.0)
    records = read_mixture(root / "mix")
    tok = train_bpe([r["prefix"] + "\n" + r["suffix"] for r in records], vocab_size=512)
    return records, tok


def _assert_no_answer_cut(records, tok, max_prefix, max_suffix):
    encoded = [encode_example(tok, r["prefix"], r["suffix"], max_prefix, max_suffix) for r in records]
    for r, enc in zip(records, encoded):
        ids = enc.tokens[enc.suffix]
        assert ids[-1] == tok.eos_id and len(ids) <= max_suffix
        answer = split_answer_sentence(r["suffix"])[1]
        assert tok.decode(ids).strip().endswith(answer), (r["suffix"], tok.decode(ids))
    counts = shortening_counts(encoded)
    assert counts.answers_cut == 0 and counts.targets == len(records)
    return counts


def test_real_mixture_chosen_lengths_cut_no_answer(real_mixture):
    records, tok = real_mixture
    tasks = {r["task"] for r in records}
    assert {"label", "rationale", "lskd"} <= tasks
    choice = choose_lengths(tok, records, cap_prefix=256, cap_suffix=256)
    assert choice.max_prefix % 8 == 0 and choice.max_suffix % 8 == 0
    assert choice.max_prefix >= choice.prefix.max and choice.prefixes_over == 0  # every prompt whole
    assert choice.max_suffix >= choice.suffix.p99 and choice.max_suffix >= choice.answer.max
    assert choice.targets_over <= 0.01 * len(records) + 1e-9
    assert choice.answers_over == 0 and choice.shortening.answers_cut == 0
    assert choice.suffix_by_task["rationale"].max > choice.suffix_by_task["label"].max
    counts = _assert_no_answer_cut(records, tok, choice.max_prefix, choice.max_suffix)
    assert counts.shortened == choice.shortening.shortened == choice.targets_over


def test_real_mixture_small_suffix_shortens_rationales_but_cuts_no_answer(real_mixture):
    records, tok = real_mixture
    choice = choose_lengths(tok, records, cap_prefix=256, cap_suffix=256)
    small = choice.answer.max  # the longest answer sentence + eos, exactly: nothing else fits beside some
    capped = choose_lengths(tok, records, cap_prefix=256, cap_suffix=small)
    assert capped.max_suffix == small and capped.capped_suffix and capped.answers_over == 0
    counts = _assert_no_answer_cut(records, tok, choice.max_prefix, small)
    rationales = sum(r["task"] != "label" for r in records)
    assert counts.shortened >= rationales // 2 and counts.sentences_dropped > 0
    assert counts == capped.shortening
    mid = _assert_no_answer_cut(records, tok, choice.max_prefix, max(small, choice.suffix.p50 + 8))
    assert mid.box_lists > 0  # a middling budget is met by shortening box lists first
    assert capped.summary().endswith("0 answers cut")
