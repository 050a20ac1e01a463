"""Image reliance: the answer likelihood with the right, a swapped and a grey image, on real students."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

from vpd.benchmarks.ablation_data import held_out_examples
from vpd.benchmarks.image_reliance import image_reliance, main, summarise

sys.path.insert(0, str(Path(__file__).parent))

from student_fixtures import write_random_student  # noqa: E402


def test_summarise_by_hand() -> None:
    nll = {"right": np.array([1.0, 2.0, 0.5]), "swapped": np.array([2.0, 2.0, 0.5]),
           "grey": np.array([1.0, 4.0, 1.5])}
    rows = {r.qtype: r for r in summarise(["a", "a", "b"], nll)}
    assert list(rows) == ["a", "b", "all"] and rows["all"].n == 3
    assert rows["a"].right == 1.5 and rows["a"].swapped_gain == 0.5 and rows["a"].grey_gain == 1.0
    assert rows["b"].grey_gain == 1.0 and np.isnan(rows["b"].grey_half_width)  # one example: no interval
    assert abs(rows["all"].swapped_gain - 1 / 3) < 1e-9 and rows["all"].swapped_half_width > 0


@pytest.mark.slow  # two random students compile one scorer each (~20 s)
def test_an_image_blind_student_scores_zero_and_a_seeing_one_does_not(shapes_dir, tmp_path) -> None:
    examples = held_out_examples(shapes_dir, None, 24)  # every split: the fixture has one val scene
    assert len({e.image for e in examples}) >= 2
    seeing = {r.qtype: r for r in image_reliance(write_random_student(tmp_path / "seeing"), examples, batch=8)}
    blind = {r.qtype: r for r in image_reliance(write_random_student(tmp_path / "blind", image_blind=True),
                                                examples, batch=8)}
    assert seeing["all"].n == blind["all"].n == len(examples)
    assert sum(r.n for q, r in seeing.items() if q != "all") == len(examples)
    # the projector is zero: every image gives the same tokens, so swapping or greying changes nothing
    assert abs(blind["all"].swapped_gain) < 1e-5 and abs(blind["all"].grey_gain) < 1e-5
    # a random but image-reading student's answer likelihoods move with the image
    assert abs(seeing["all"].swapped_gain) > 1e-4 and seeing["all"].right != blind["all"].right


def test_cli_refuses_an_empty_split(shapes_dir, tmp_path, capsys) -> None:
    assert main(["--student", str(tmp_path / "none"), "--test", str(shapes_dir), "--split", "nosuch"]) == 2
    assert "no labelled examples" in capsys.readouterr().err
