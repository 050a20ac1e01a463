"""Shared fixtures.

``shapes_dir``: a small generated ``shapes`` dataset (20 scenes x 2 questions = 40 examples, seed 0,
all splits), written once per test session. Layout: ``images/*.png``, ``examples.jsonl``,
``dataset.json``; read it with ``vpd.datasets.read_examples(shapes_dir)``.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

SHAPES_FIXTURE_SCENES = 20
SHAPES_FIXTURE_PER_IMAGE = 2
SHAPES_FIXTURE_SEED = 0


@pytest.fixture(scope="session")
def shapes_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A Path to a generated shapes dataset of ~40 examples (seed 0)."""
    from vpd.benchmarks.shapes import make_dataset

    out = tmp_path_factory.mktemp("shapes") / "data"
    make_dataset(out, n=SHAPES_FIXTURE_SCENES, seed=SHAPES_FIXTURE_SEED,
                 per_image=SHAPES_FIXTURE_PER_IMAGE)
    return out
