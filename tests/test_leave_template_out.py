"""Leave-template-out few-shot prompts (`--exclude-same-template`): no example written for the
question's own template is offered, in retrieval, prompts, `vpd synth` and the few-shot eval."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from vpd.benchmarks.shapes_questions import TEMPLATES
from vpd.programs.library import load_library
from vpd.programs.prompt import PromptBuilder
from vpd.programs.retrieval import Retriever, same_template, structure_text

LIB = load_library()
FILL = {"color": "purple", "color2": "cyan", "shape": "cone", "shape2": "cylinder", "size": "tiny"}


class FakeEmbedder:
    """Stands in for MiniLM in these tests (about exclusion, not similarity quality): a hashed
    bag of words, L2-normalised, so questions sharing words score higher."""

    def __call__(self, texts):
        out = np.zeros((len(texts), 64), np.float32)
        for i, t in enumerate(texts):
            for w in t.split():
                out[i, int(hashlib.md5(w.encode()).hexdigest(), 16) % 64] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


def _question(template):
    return template.format(**FILL)


def test_same_template_matches_its_own_template_only():
    p = LIB.get("shapes_count_color_shape_1")  # How many {color} {shape}s are there?
    assert same_template(p, "How many purple cones are there?")
    assert not same_template(p, "How many cones are there?")
    assert not same_template(p, "How many purple objects are left of the cyan cylinder?")
    assert same_template(LIB.get("shapes_spatial_left_1"), "Is the purple cone left of the cyan cylinder?")


@pytest.mark.parametrize("template", TEMPLATES)
def test_retrieval_leaves_the_template_out(template):
    r = Retriever(LIB, embedder=FakeEmbedder())
    q = _question(template)
    without = r.nearest(q, k=4, tools={"detect", "vqa", "verify_property"}, exclude_same_template=True)
    assert sum(same_template(p, q) for p in LIB) >= 2  # the library has examples of this template to leave out
    assert len(without) == 4 and all(p.template != template for p in without)
    assert all(structure_text(p.question, p.choices) != structure_text(q) for p in without)


def test_prompt_builder_both_modes():
    b = PromptBuilder(None, retriever=Retriever(LIB, embedder=FakeEmbedder()))
    q = "What color is the cone?"
    choices = ("red", "blue", "green", "cyan")
    near = b.build(q, choices, mode="nearest", exclude_same_template=True)
    assert not any(LIB.get(i).template == "What color is the {shape}?" for i in near.example_ids)
    assert any(LIB.get(i).template == "What color is the {shape}?" for i in b.build(q, choices).example_ids)
    fixed = b.build(q, choices, mode="fixed", exclude_same_template=True)
    assert "shapes_choice_color_1" not in fixed.example_ids and len(fixed.example_ids) == 4
    assert "shapes_choice_color_1" in b.build(q, choices, mode="fixed").example_ids


def test_synth_writer_and_cli_carry_the_flag(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    import vpd.synth as synth_mod
    from tests.test_synth import make_data
    from vpd.cli import app
    from vpd.synth_config import SessionStats
    from vpd.synth_writer import LLMProgramWriter

    a = LLMProgramWriter(None, tools=None, fewshot="nearest", temperature=0.7, max_tokens=64, stats=SessionStats())
    b = LLMProgramWriter(None, tools=None, fewshot="nearest", temperature=0.7, max_tokens=64, stats=SessionStats(),
                         exclude_same_template=True)
    assert b.prompt_fingerprint() == a.prompt_fingerprint() + "+lto"  # a resumed run cannot switch it silently
    seen = {}

    def fake_run_synth(cfg):  # stands in for the stage: this test is about the option reaching the config
        seen["cfg"] = cfg
        raise KeyboardInterrupt

    monkeypatch.setattr(synth_mod, "run_synth", fake_run_synth)
    data = make_data(tmp_path / "d", [("How many cubes are there?", "2", "count_simple")])
    CliRunner().invoke(app, ["synth", "--data", str(data), "--out", str(tmp_path / "r"), "--exclude-same-template"])
    assert seen["cfg"].exclude_same_template is True and seen["cfg"].library is None
    bad = CliRunner().invoke(app, ["synth", "--data", str(data), "--out", str(tmp_path / "r"),
                                   "--library", str(tmp_path / "nowhere")])
    assert bad.exit_code == 2 and "no program library folder" in bad.output


def test_synth_library_option_changes_the_prompts_and_fingerprint(tmp_path):
    """`vpd synth --library DIR`: the writer's prompts draw only on DIR's examples, and the
    fingerprint differs from the packaged library's, so a resume cannot switch libraries silently."""
    import shutil

    from vpd.programs.library import LIBRARY_DIR
    from vpd.synth_config import SessionStats
    from vpd.synth_writer import LLMProgramWriter

    small = tmp_path / "lib"
    small.mkdir()
    keep = sorted(LIBRARY_DIR.glob("shapes_count_*.py"))[:3]
    for f in keep:
        shutil.copy(f, small / f.name)
    kw = dict(tools=None, fewshot="fixed", temperature=0.7, max_tokens=64, stats=SessionStats())
    packaged = LLMProgramWriter(None, **kw)
    custom = LLMProgramWriter(None, library=str(small), **kw)
    assert custom.prompt_fingerprint() != packaged.prompt_fingerprint()
    ids = set(custom._build_prompt("How many red cubes are there?", None).example_ids)
    assert ids and ids <= {p.id for p in load_library(small)}


def test_fewshot_eval_reports_no_same_template_example(tmp_path):
    from vpd.benchmarks.shapes import make_dataset
    from vpd.datasets import read_examples
    from vpd.programs.fewshot_eval import compare_modes
    from vpd.programs.sampler_replay import ReplaySampler

    make_dataset(tmp_path / "d", n=3, seed=4)
    examples, _ = read_examples(tmp_path / "d" / "examples.jsonl")
    examples = examples[:4]
    sampler = ReplaySampler({("", None): ["    return '1'\n"]}, name="replay:test")
    import vpd.programs.fewshot_eval as fe

    real = fe.PromptBuilder

    def builder_with_fake_embedder(tools, **kw):
        return real(tools, retriever=Retriever(kw.get("library") or LIB, embedder=FakeEmbedder()), **kw)

    fe.PromptBuilder = builder_with_fake_embedder
    try:
        plain = compare_modes(sampler, examples, modes=("nearest",), k=1)[0]
        lto = compare_modes(sampler, examples, modes=("nearest",), k=1, exclude_same_template=True)[0]
    finally:
        fe.PromptBuilder = real
    assert plain.same_template_last > 0 and lto.same_template_last == 0.0 and lto.exclude_same_template
    assert lto.questions == plain.questions == len(examples)


def test_template_matches_checks_the_filler_kinds():
    from vpd.programs.retrieval import template_matches

    assert template_matches("What color is the {size} {shape}?", "What color is the small cube?")
    assert not template_matches("What color is the {size} {shape}?", "What color is the leftmost object?")
    assert template_matches("How many {shape}s are above the {color2} {shape2}?",
                            "How many spheres are above the red cube?")


def test_general_library_teaches_composition_outside_the_templates():
    general = [p for p in LIB if p.source == "composition"]
    assert len(general) == 31
    assert {"count_simple", "count_complex", "exists", "attribute", "spatial", "compare", "choice"} <= {
        p.qtype for p in general}
    others = {structure_text(p.question, p.choices) for p in LIB if p.source != "composition"}
    for p in general:
        assert not p.template and not any(same_template(q, p.question, p.choices) for q in LIB if q.template), p.id
        assert structure_text(p.question, p.choices) not in others, p.id
