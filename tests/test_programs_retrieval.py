"""Retrieval by question structure (real MiniLM from the offline package)."""

from __future__ import annotations

import random

import pytest

from vpd.programs.library import load_library
from vpd.programs.retrieval import Retriever, structure_text

COLORS = "red green blue yellow purple orange cyan".split()
SHAPES = "cube sphere cylinder triangle".split()


def test_structure_text_masks_fillers():
    assert structure_text("How many red cubes are left of the blue sphere?") == \
        "how many color shape are left of the color shape ?"
    assert structure_text("How many people are wearing 3 hats?") == "how many thing are wearing number thing ?"
    assert structure_text("What color is the cube?", ["red", "blue"]) == \
        "what color is the shape ? options: color , color"
    assert structure_text('What does the sign "STOP" say?') == "what does the thing text say ?"


@pytest.fixture(scope="module")
def retriever():
    return Retriever(load_library())


def _held_out_questions(n_per_template: int, seed: int):
    from vpd.benchmarks.shapes_questions import TEMPLATES

    rng = random.Random(seed)
    for t in TEMPLATES:
        for _ in range(n_per_template):
            fill = dict(color=rng.choice(COLORS), color2=rng.choice(COLORS), shape=rng.choice(SHAPES),
                        shape2=rng.choice(SHAPES), size=rng.choice(["small", "large"]))
            choices = None
            if t == "What color is the {shape}?":
                choices = rng.sample(COLORS, 4)
            elif t == "Which shape is the {color} object?":
                choices = rng.sample(SHAPES, 4)
            elif t == "How many {color} {shape}s are in the image?":
                choices = [str(x) for x in rng.sample(range(7), 4)]
            yield t, t.format(**fill), choices


def test_same_template_example_is_picked_last_for_held_out_fillers(retriever):
    qs = list(_held_out_questions(2, seed=3))
    retriever.warm([(q, c) for _, q, c in qs])
    hits = 0
    for t, q, c in qs:
        got = retriever.nearest_with_scores(q, c, k=4)
        assert len(got) == 4
        assert [s for _, s in got] == sorted(s for _, s in got)  # most similar last
        hits += got[-1][0].template == t
    assert hits >= 0.95 * len(qs), f"{hits}/{len(qs)}"


def test_structure_beats_raw_text(retriever):
    qs = list(_held_out_questions(2, seed=4))
    raw = Retriever(retriever.library, embedder=retriever.embedder, structural=False)
    raw.warm([(q, c) for _, q, c in qs])
    hit = lambda r: sum(r.nearest(q, c, k=1)[-1].template == t for t, q, c in qs)  # noqa: E731
    assert hit(retriever) > hit(raw)


def test_tools_filter_and_exclude(retriever):
    got = retriever.nearest("What does the sign say?", None, k=4, tools={"detect"})
    assert all(p.tools <= {"detect"} for p in got)
    with_ocr = retriever.nearest("What does the sign say?", None, k=1, tools={"detect", "ocr"})
    assert with_ocr[-1].id == "ocr_sign_text"
    got = retriever.nearest("What does the sign say?", None, k=1, exclude=["ocr_sign_text"])
    assert got[-1].id != "ocr_sign_text"
