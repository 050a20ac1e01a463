"""Deterministic triples from a verbalisation (an extra LSKD source, and critic negatives).

:func:`verbaliser_triples` writes attribute and spatial questions about the regions using only
what the tools said (so a triple is as right as the tools were). :func:`perturbed_triples` makes
*wrong* versions (another attribute value, answer and rationale changed together, so only the
verbalisation can tell) — negatives for training the critic, never part of the output data.
Spatial relations use box centres in pixels (origin top-left, y down).
"""

from __future__ import annotations

import random
from typing import Sequence

from vpd.distill.lskd import Triple, image_file_name
from vpd.distill.verbalize import Region, Verbalisation


def _noun(r: Region) -> str:
    return r.attributes.get("shape") or r.name or "object"


def _attr_triples(verb: Verbalisation, r: Region) -> list[Triple]:
    out = []
    noun = _noun(r)
    for attr in ("color", "size", "shape"):
        val = r.attributes.get(attr)
        if not val:
            continue
        thing = "object" if attr == "shape" else noun
        out.append(Triple(
            image=verb.image, source="verbaliser",
            question=f"What {attr} is the {thing} in [{r.id}]?", answer=val,
            rationale=f"The region [{r.id}] shows a {r.description}, so its {attr} is {val}."))
    return out


def _centre(r: Region) -> tuple[float, float]:
    b = r.box
    return ((b.x0 + b.x1) / 2, (b.y0 + b.y1) / 2)


def _spatial_triple(verb: Verbalisation, a: Region, b: Region, relation: str) -> Triple | None:
    (ax, ay), (bx, by) = _centre(a), _centre(b)
    if relation in ("left", "right"):
        if abs(ax - bx) < 4:
            return None
        truth = ax < bx if relation == "left" else ax > bx
        phrase = f"to the {relation} of"
        fact = f"[{a.id}] is centred at x {round(ax)} and [{b.id}] at x {round(bx)}"
    else:
        if abs(ay - by) < 4:
            return None
        truth = ay < by if relation == "above" else ay > by
        phrase = relation
        fact = f"[{a.id}] is centred at y {round(ay)} and [{b.id}] at y {round(by)} (y grows downwards)"
    ans = "yes" if truth else "no"
    verdict = "is" if truth else "is not"
    return Triple(image=verb.image, source="verbaliser", question=f"Is [{a.id}] {phrase} [{b.id}]?", answer=ans,
                  rationale=f"{fact}, so [{a.id}] {verdict} {phrase} [{b.id}].")


def verbaliser_triples(verb: Verbalisation, *, per_image: int = 6, seed: int = 0) -> list[Triple]:
    """Up to ``per_image`` triples about ``verb``'s regions (attribute and spatial), seeded."""
    rng = random.Random(f"{seed}:{image_file_name(verb.image)}")
    pool: list[Triple] = []
    for r in verb.regions:
        pool.extend(_attr_triples(verb, r))
    regs = list(verb.regions)
    for _ in range(min(len(regs) * 2, 12)):
        if len(regs) < 2:
            break
        a, b = rng.sample(regs, 2)
        t = _spatial_triple(verb, a, b, rng.choice(["left", "right", "above", "below"]))
        if t is not None and all(t.question != p.question for p in pool):
            pool.append(t)
    rng.shuffle(pool)
    chosen = pool[:per_image]
    return [Triple(**{**t.__dict__, "index": f"verbaliser-{i}"}) for i, t in enumerate(chosen)]


def perturbed_triples(verb: Verbalisation, triples: Sequence[Triple], vocab: dict[str, Sequence[str]], *,
                      seed: int = 0) -> list[Triple]:
    """Wrong versions of attribute/spatial triples: a different attribute value (from ``vocab``,
    attribute -> values) or the negated yes/no answer, rationale changed to match."""
    rng = random.Random(f"perturb:{seed}:{image_file_name(verb.image)}")
    out = []
    for i, t in enumerate(triples):
        ans = t.answer.strip().lower()
        if ans in ("yes", "no"):
            new = "no" if ans == "yes" else "yes"
            rat = t.rationale.replace(" is not ", " \0 ").replace(" is ", " is not ").replace(" \0 ", " is ") \
                if (" is " in t.rationale) else t.rationale
            out.append(Triple(image=t.image, question=t.question, answer=new, rationale=rat, source="perturbed",
                              index=f"perturbed-{i}"))
            continue
        for attr, values in vocab.items():
            if f"What {attr} " in t.question and ans in values:
                others = [v for v in values if v != ans]
                if not others:
                    break
                new = rng.choice(others)
                out.append(Triple(image=t.image, question=t.question, answer=new,
                                  rationale=t.rationale.replace(ans, new), source="perturbed", index=f"perturbed-{i}"))
                break
    return out
