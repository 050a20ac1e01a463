"""Our distilled student as a vqa/caption tool, on a random-init ``test``-preset checkpoint."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vpd.tools import MissingWeights, load
from vpd.tools.backends.vpd_vlm import answer_from_rationale

sys.path.insert(0, str(Path(__file__).parent))

from student_fixtures import write_random_student  # noqa: E402


@pytest.mark.parametrize("text,answer", [("The cube at 1 2 3 4 is red. So the answer is red.", "red"),
                                         ("So the answer is 2", "2"), ("no marker here", "no marker here"),
                                         ("So the answer is A. So the answer is B.", "B")])
def test_answer_from_rationale(text, answer):
    assert answer_from_rationale(text) == answer


def test_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(MissingWeights, match="model_path"):
        load({"vqa": {"backend": "vpd_vlm", "model_path": str(tmp_path / "student")}})


def _write_student(out):
    return write_random_student(out, max_suffix=16, corpus="how many red cubes are there? answer with a single "
                                "word or phrase. two blue sphere")


@pytest.mark.slow
def test_student_answers_batched_equal_one_by_one(tmp_path):
    path = _write_student(tmp_path / "student")
    tb = load({"vqa": {"backend": "vpd_vlm", "model_path": str(path), "max_new_tokens": 8},
               "caption": {"backend": "vpd_vlm", "model_path": str(path), "max_new_tokens": 8}})
    be = tb.backends["vqa"]
    rng = np.random.RandomState(0)
    images = [Image.fromarray(rng.randint(0, 255, (40 + 8 * i, 48, 3), dtype=np.uint8)) for i in range(3)]
    qs = ["how many red cubes?", "what color is the sphere?", "is there a cube?"]
    one = [tb.vqa(im, q) for im, q in zip(images, qs)]
    assert all(isinstance(a, str) for a in one)
    assert be.vqa_batch(images, [{"question": q} for q in qs]) == one
    assert isinstance(tb.caption(images[0]), str)
    assert be.cache_tag().startswith("vpd_vlm:1:") and len(be.weight_hash()) == 12


@pytest.mark.slow
def test_every_key_setting_changes_the_cache_key(tmp_path):
    from vpd.tools.backends.vpd_vlm import VpdVlmBackend

    path = str(_write_student(tmp_path / "student"))

    def tag(**opts):
        return load({"vqa": {"backend": "vpd_vlm", "model_path": path, **opts}}).backends["vqa"].cache_tag()

    base = tag()
    assert VpdVlmBackend.key_settings == {"mode", "max_new_tokens", "caption_prompt", "dtype"}
    for key, value in [("mode", "rationale"), ("max_new_tokens", 8), ("caption_prompt", "Caption it.")]:
        assert tag(**{key: value}) != base, key
    assert tag(max_new_tokens=32) == base  # the label-mode default, spelled out
    assert tag(mode="rationale", max_new_tokens=128) == tag(mode="rationale")  # the rationale default
    assert tag(device="cpu", max_batch=2, dtype="float32") == base
