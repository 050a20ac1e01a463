"""Named settings for ``vpd synth --recipe NAME`` (registry :data:`SYNTH_RECIPES`).

A recipe fills in sampling and selection options; an option the user gives on the command line
wins over the recipe's value (the CLI passes the names it saw as ``explicit``).

``vpd-paper`` — VPD (Hu et al., CVPR 2024, sec. 3 and appendix): k = 5 programs per question
sampled at temperature 0.5, the LLM judge for near-miss answers (``--judge``,
:class:`vpd.checkers.JudgedChecker`), and among the correct programs the one the LLM scored
highest (``--select score``: mean token log-probability).
"""

from __future__ import annotations

from typing import Any, Collection, Mapping

from vpd.registry import Registry

SYNTH_RECIPES: Registry[Mapping[str, Any]] = Registry("synth recipe")
SYNTH_RECIPES.add("vpd-paper", {"k": 5, "temperature": 0.5, "judge": True, "select": "score"})


def apply_recipe(name: str | None, values: Mapping[str, Any], explicit: Collection[str] = ()) -> dict[str, Any]:
    """``values`` with recipe ``name``'s settings filled in, except the keys in ``explicit``
    (given by the user); ``name`` None returns ``values`` unchanged. Unknown name: "did you mean"."""
    out = dict(values)
    if name is None:
        return out
    for key, value in SYNTH_RECIPES.get(name).items():
        if key not in explicit:
            out[key] = value
    return out
