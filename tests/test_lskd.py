"""LSKD: verbalisation with the real shapes tools, robust triple parsing, the LSKD schema, drawing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image

from vpd.distill.lskd import (Triple, from_record, lskd_prompt, llm_triples, to_record, to_tokens, tokens_to_text,
                              triples_from_completion)
from vpd.distill.lskd_parse import parse_triples
from vpd.distill.lskd_templates import perturbed_triples, verbaliser_triples
from vpd.distill.regions_draw import PALETTE, draw_regions, shuffle_regions
from vpd.distill.shapes_labels import VOCAB, label_triple
from vpd.distill.verbalize import Region, Verbalisation, verbalise
from vpd.programs.sampler_base import Completion
from vpd.types import Box


@pytest.fixture(scope="module")
def shapes_data(tmp_path_factory):
    from vpd.benchmarks.shapes import make_dataset
    from vpd.datasets import read_examples

    root = tmp_path_factory.mktemp("lskd") / "data"
    make_dataset(root, n=6, seed=21)
    examples, _ = read_examples(root)
    return root, examples


@pytest.fixture(scope="module")
def toolbox():
    from vpd.tools import load

    return load("shapes")


def _verb(n: int = 3) -> Verbalisation:
    regs = tuple(Region(id=k, box=Box(x0=10 + 50 * k, y0=10, x1=40 + 50 * k, y1=40, label="object"), name="object",
                        attributes={"size": "small", "color": ["red", "blue", "green"][k % 3], "shape": "cube"})
                 for k in range(n))
    return Verbalisation(image="/img.png", width=200, height=100, caption="3 objects", caption_source="caption",
                         regions=regs)


def test_verbalise_real_shapes_image_matches_scene(shapes_data, toolbox):
    root, examples = shapes_data
    ex = examples[0]
    v = verbalise(ex.image, toolbox)
    scene = ex.metadata["scene"]
    assert len(v.regions) == len(scene)
    assert [r.id for r in v.regions] == list(range(len(v.regions)))
    xs = [r.box.x0 for r in v.regions]
    assert xs == sorted(xs)  # numbered left to right
    described = sorted(f"{r.attributes.get('size')} {r.attributes.get('color')} {r.attributes.get('shape')}" for r in v.regions)
    truth = sorted(f"{o['size']} {o['color']} {o['shape']}" for o in scene)
    assert sum(d == t for d, t in zip(described, truth)) >= len(truth) - 1
    text = v.text()
    assert text.startswith("Image: ") and "[0] " in text
    assert Verbalisation.from_dict(json.loads(v.to_json())) == v


def test_verbalise_blank_image_has_no_regions_and_records_nothing_fatal(tmp_path, toolbox):
    p = tmp_path / "blank.png"
    Image.new("RGB", (64, 48), (128, 128, 128)).save(p)
    v = verbalise(str(p), toolbox)
    assert v.regions == ()
    assert "Regions: none" in v.text()


@pytest.mark.parametrize("text", [
    "Q: What color is [0]?\nA: red\nR: [0] is a small red cube.",
    "1. Question: What color is [0]?\n   Answer: red\n   Rationale: [0] is a small red cube.",
    "**Question:** What color is [0]?\n**Answer:** red\n**Reason:** [0] is a small red cube.",
    '{"question": "What color is [0]?", "answer": "red", "rationale": "[0] is a small red cube."}',
    '[{"question": "What color is [0]?", "answer": "red", "rationale": "[0] is a small red cube."}]',
    "Q: What color is [0]?\nA: red\nBecause [0] is a small red cube.",
    "- Q1: What color is [0]?\n- A1: red\n- R1: [0] is a small\n  red cube.",
])
def test_parse_accepts_many_shapes(text):
    p = parse_triples(text)
    assert len(p.triples) == 1, p
    t = p.triples[0]
    assert (t.question, t.answer) == ("What color is [0]?", "red")
    assert t.rationale.startswith("[0] is a small") and t.rationale.endswith("red cube.")


@pytest.mark.parametrize("text,reason", [
    ("", "empty output"),
    ("I am a language model and cannot see images.", "no triples found"),
    ("Q: What color is [0]?\nA: red", "missing rationale"),
    ("A: red\nR: because", "missing question"),
    ("{\"question\": 1", "no triples found"),
])
def test_parse_unparseable_output_is_recorded_not_raised(text, reason):
    p = parse_triples(text)
    assert p.triples == ()
    assert any(reason in e for e in p.errors)


def test_completion_triples_with_unknown_regions_are_rejected():
    v = _verb(2)
    text = (" What color is [0]?\nA: red\nR: [0] is red.\nQ: Is [7] left of [0]?\nA: yes\nR: [7] is left.\n"
            "Q: What is this?\nA: cube\nR: it is a cube.\nQ: only a question")
    triples, rejected = triples_from_completion(text, v)
    assert [t.question for t in triples] == ["What color is [0]?"]
    reasons = [r.reason for r in rejected]
    assert "unknown regions [7]" in reasons and "refers to no region" in reasons
    assert any("missing" in r for r in reasons)


def test_lskd_record_schema_and_token_round_trip():
    v = _verb(3)
    t = Triple(image="/img.png", question="Is [0] left of [2]?", answer="Yes, it is.",
               rationale="[0] is at x 25 and [2] at x 125, so [0] is further left.", source="llm", index="7", prediction=0.9)
    rec = to_record(t, v)
    assert set(rec) >= {"image", "region", "region_all", "references", "question", "answer", "rationale", "prediction"}
    assert rec["region"] == [0, 2] and rec["region_all"] == [0, 2]
    assert rec["references"] == [{"name": "0", "boxes": [[10.0, 10.0, 40.0, 40.0]]},
                                 {"name": "2", "boxes": [[110.0, 10.0, 140.0, 40.0]]}]
    assert rec["question"] == ["Is", [0], "left", "of", [2], "?"]
    assert tokens_to_text(rec["question"]) == "Is [0] left of [2]?"
    back = from_record(json.loads(json.dumps(rec)))
    assert (back.question, back.answer, back.rationale, back.prediction) == (t.question, t.answer, t.rationale, 0.9)
    assert to_tokens("Ünïcode 🚗 [1].") == ["Ünïcode", "🚗", [1], "."]


class FakeSampler:
    """Canned completions (a unit-test stand-in for an LLM): one good, one junk, one error."""

    calls = 0

    def generate(self, prompts, *, n=1, temperature=0.0, max_tokens=256, stop=None, seed=None):
        outs = [" What color is [0]?\nA: red\nR: [0] is a small red cube.", "lorem ipsum dolor", None]
        res = []
        for _ in prompts:
            o = outs[self.calls % 3]
            self.calls += 1
            res.append([Completion(text="", error="HTTP 500") if o is None else Completion(text=o)])
        return res


def test_llm_triples_records_failures_and_keeps_going():
    verbs = [_verb(2), _verb(1), _verb(3), Verbalisation(image="/empty.png", width=1, height=1, caption="",
                                                         caption_source="regions", regions=())]
    assert lskd_prompt(verbs[0]).endswith("Questions:\nQ:")
    triples, rejected, counts = llm_triples(verbs, FakeSampler(), batch_size=2)
    assert counts["prompts"] == 3  # the image without regions is not sent
    assert len(triples) == 1 and all(t.source == "llm" for t in triples)
    stages = sorted(r.stage for r in rejected)
    assert "sampler" in stages and "parse" in stages


def test_scene_labels_verbaliser_and_perturbed_triples(shapes_data, toolbox):
    root, examples = shapes_data
    ex = examples[0]
    v = verbalise(ex.image, toolbox)
    good = verbaliser_triples(v, per_image=8)
    assert good and all(t.refs for t in good)
    labels = [label_triple(t, v, ex.metadata["scene"])[0] for t in good]
    assert sum(l is True for l in labels) >= len(labels) - 1
    bad = perturbed_triples(v, good, VOCAB)
    assert bad
    bad_labels = [label_triple(t, v, ex.metadata["scene"])[0] for t in bad]
    assert all(l is False for l in bad_labels)
    free = Triple(image=v.image, question="Why is [0] here?", answer="art", rationale="[0] looks nice", source="llm")
    assert label_triple(free, v, ex.metadata["scene"])[0] is None


def test_seeded_triples_do_not_depend_on_the_dataset_folder():
    """The same image in another folder (another clone, a tmp dir) gives the same seeded triples."""
    import dataclasses

    def texts(image: str, seed: int = 0) -> list[str]:
        v = dataclasses.replace(_verb(5), image=image)
        good = verbaliser_triples(v, per_image=6, seed=seed)
        return [t.text() for t in good + perturbed_triples(v, good, VOCAB, seed=seed)]

    here = texts("/data/a/images/0001.png")
    assert here == texts("/tmp/xyz/images/0001.png") == texts("C:\\data\\images\\0001.png")
    assert any(texts(f"/data/a/images/{i:04d}.png") != here for i in range(2, 12))  # the name does matter


def test_draw_regions_colour_order_and_shuffle(tmp_path):
    p = tmp_path / "img.png"
    Image.new("RGB", (120, 80), (255, 255, 255)).save(p)
    refs = [{"name": "0", "boxes": [[10, 30, 50, 70]]}, {"name": "1", "boxes": [[60, 30, 110, 70]]}]
    img = draw_regions(p, refs, width=2)
    assert img.getpixel((10, 50)) == PALETTE[0] and img.getpixel((60, 50)) == PALETTE[1]
    rec = to_record(Triple(image=str(p), question="Is [0] left of [1]?", answer="yes", rationale="[0] is left of [1].",
                           source="llm", index="3"), Verbalisation(
        image=str(p), width=120, height=80, caption="", caption_source="", regions=(
            Region(id=0, box=Box(x0=10, y0=30, x1=50, y1=70), name="a"),
            Region(id=1, box=Box(x0=60, y0=30, x1=110, y1=70), name="b"))))
    seen = set()
    for seed in range(8):
        s = shuffle_regions(rec, seed)
        m = {int(k): v for k, v in s["region_map"].items()}
        assert sorted(m.values()) == [0, 1]
        assert s["question"] == ["Is", [m[0]], "left", "of", [m[1]], "?"]
        assert {r["name"]: r["boxes"] for r in s["references"]} == {str(m[0]): [[10.0, 30.0, 50.0, 70.0]],
                                                                     str(m[1]): [[60.0, 30.0, 110.0, 70.0]]}
        seen.add(tuple(sorted(m.items())))
    assert len(seen) == 2  # both orders occur


@pytest.mark.slow
def test_lskd_stage_with_the_real_offline_llm(shapes_data, tmp_path):
    """The LLM path for real: the packaged Gemma 3 270M writes triples from real verbalisations;
    what it writes is parsed, labelled against the scene, scored and kept or rejected, none fatal."""
    from vpd.distill.lskd_run import LskdConfig, run_lskd

    root, _ = shapes_data
    out = tmp_path / "lskd"
    rep = run_lskd(LskdConfig(data=str(root), out=str(out), llm="gemma", max_images=6, max_tokens=120),
                   show_progress=False)
    assert rep.llm["prompts"] == rep.llm["completions"] == rep.verbalised == 6
    assert rep.llm["completion_tokens"] > 0
    n_llm = rep.triples.get("llm", 0)
    rejects = [json.loads(l) for l in (out / "lskd_rejects.jsonl").read_text().splitlines()]
    assert n_llm + len(rejects) >= 1  # every completion became triples or recorded rejections
    assert "heldout" in rep.critic and 0.0 <= rep.critic["heldout"]["f1"] <= 1.0
    assert json.loads((out / "report.json").read_text())["lskd"]["critic"]["heldout"]["n"] > 0
