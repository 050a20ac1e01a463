"""Prompt assembly: API from the registry, nearest examples last, budget, fixed mode, version."""

from __future__ import annotations

import pytest

from vpd.programs.prompt import (CODE_PREFIX, FIXED_EXAMPLE_IDS, PROMPT_VERSION, PromptBuilder,
                                 build_program_prompt)
from vpd.programs.sampler_base import estimate_tokens
from vpd.tools.api_prompt import render_api

TOOLS = ["count", "detect"]


@pytest.fixture(scope="module")
def builder():
    return PromptBuilder(TOOLS)


def test_layout(builder):
    p = builder.build("How many green spheres are there?", k_examples=3)
    assert p.text.startswith("# Python API")
    assert render_api(TOOLS) in p.text
    assert p.text.endswith("# Question: How many green spheres are there?\n" + CODE_PREFIX)
    assert p.version == PROMPT_VERSION and p.mode == "nearest" and len(p.example_ids) == 3
    last = builder.library.get(p.example_ids[-1])
    assert last.template == "How many {color} {shape}s are there?"
    # examples appear in the order of example_ids, the last right before the question
    positions = [p.text.index(builder.library.get(i).render()) for i in p.example_ids]
    assert positions == sorted(positions)
    assert "ocr" not in p.text.split("# Each program")[0]  # API shows only the toolbox's tools


def test_choices_are_written_for_copying(builder):
    p = builder.build("What color is the sphere?", ["red", "blue", "green", "cyan"])
    assert p.text.endswith("# Question: What color is the sphere?\n# Choices: A) red B) blue C) green D) cyan\n" + CODE_PREFIX)
    assert builder.library.get(p.example_ids[-1]).qtype == "choice"


def test_budget_drops_least_similar_examples_never_the_api(builder):
    full = builder.build("Is the red cube left of the blue sphere?", k_examples=4)
    api_cost = estimate_tokens(builder.api)
    budget = full.n_tokens - 60
    cut = builder.build("Is the red cube left of the blue sphere?", k_examples=4, budget_tokens=budget)
    assert 1 <= len(cut.dropped_ids) < 4 and cut.n_tokens <= budget and not cut.over_budget
    assert cut.example_ids == full.example_ids[len(cut.dropped_ids):]  # the most similar survive
    assert cut.dropped_ids == full.example_ids[:len(cut.dropped_ids)]
    tiny = builder.build("Is the red cube left of the blue sphere?", budget_tokens=api_cost // 2)
    assert tiny.example_ids == () and tiny.over_budget
    assert builder.api in tiny.text and tiny.text.endswith(CODE_PREFIX)


def test_fixed_mode_ignores_the_question(builder):
    a = builder.build("How many cubes are there?", mode="fixed")
    b = builder.build("Is the red cube above the cyan cylinder?", mode="fixed")
    assert a.example_ids == b.example_ids == FIXED_EXAMPLE_IDS
    assert a.mode == "fixed"
    with pytest.raises(ValueError, match="mode"):
        builder.build("x?", mode="random")


def test_convenience_function_and_tool_filtering():
    p = build_program_prompt("What does the sign say?", tools=["detect", "ocr"], k_examples=2)
    assert p.example_ids[-1] == "ocr_sign_text" and "def ocr(self)" in p.text
    q = build_program_prompt("What does the sign say?", tools=["detect"], k_examples=2)
    assert "ocr_sign_text" not in q.example_ids and "def ocr(self)" not in q.text


def test_fingerprint_follows_what_the_prompt_is_made_of():
    import dataclasses

    from vpd.programs.library import Library, load_library
    from vpd.programs.prompt import prompt_fingerprint

    lib = load_library()
    all_tools = PromptBuilder(None, library=lib)
    assert all_tools.fingerprint == PromptBuilder(None, library=lib).fingerprint == prompt_fingerprint(None)
    assert all_tools.fingerprint.startswith(PROMPT_VERSION + "+")
    # another toolbox renders another API section
    assert PromptBuilder(["find", "exists", "verify_property"], library=lib).fingerprint != all_tools.fingerprint
    # an edited library example changes it, though PROMPT_VERSION did not move
    p0 = lib.programs[0]
    edited = Library(programs=(dataclasses.replace(p0, program=p0.program + "    # edited\n"), *lib.programs[1:]))
    assert PromptBuilder(None, library=edited).fingerprint != all_tools.fingerprint
