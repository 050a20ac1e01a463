"""The LSKD prompt asks for inferential triples (counting, relations, comparisons, "which would"),
each with an answer and a rationale citing ``[k]`` regions, and its own examples do so."""

from __future__ import annotations

from vpd.distill.lskd import LSKD_HEADER, LSKD_PROMPT_VERSION, lskd_prompt, region_ids, triples_from_completion
from vpd.distill.lskd_parse import parse_triples
from vpd.distill.verbalize import Region, Verbalisation
from vpd.types import Box


def _verb() -> Verbalisation:
    regions = tuple(Region(id=i, box=Box(x0=10 + 60 * i, y0=20, x1=50 + 60 * i, y1=60), name="object",
                           attributes={"color": c, "shape": "cube"}) for i, c in enumerate(("red", "blue", "red")))
    return Verbalisation(image="img.png", width=200, height=100, caption="three cubes", caption_source="test",
                         regions=regions)


def test_header_asks_for_inference_and_region_citing_rationales():
    for phrase in ("inference", "counting", "relations", "comparisons", "which region would", "rationale", "[0]"):
        assert phrase in LSKD_HEADER
    assert LSKD_PROMPT_VERSION == "2"


def test_prompt_examples_are_inferential_and_cite_regions():
    prompt = lskd_prompt(_verb())
    assert prompt.endswith("Questions:\nQ:") and "[2] 130 20 170 60: red cube" in prompt
    shots = prompt[len(LSKD_HEADER): prompt.index("\n\nImage: three cubes")]
    parsed = parse_triples(shots[shots.index("Q:"):])
    assert not parsed.errors and len(parsed.triples) >= 4
    qs = " ".join(t.question.lower() for t in parsed.triples)
    assert "how many" in qs and "which would" in qs and "bigger" in qs  # counting, "which would", comparison
    for t in parsed.triples:
        assert region_ids(t.rationale), f"rationale cites no region: {t.rationale}"
        assert set(region_ids(t.question, t.answer, t.rationale)) <= {0, 1, 2, 3}
    # a model continuing in the same form yields triples about the new image's regions
    ts, rej = triples_from_completion(" How many of the regions are red?\nA: Two.\n"
                                      "R: [0] and [2] are red cubes and [1] is blue, so two are red.", _verb())
    assert [t.answer for t in ts] == ["Two."] and ts[0].refs == [0, 2, 1] and not rej
