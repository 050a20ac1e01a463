"""Per-benchmark instructions for the ``label`` task (``vpd mix``, ``vpd predict``, ``vpd eval``).

The label prompt is ``"{question}[\\nA. opt\\nB. opt…]\\n{instruction}"``
(:func:`vpd.distill.mixture.label_prefix`); the instruction depends on the example's benchmark
(:func:`benchmark_of`) and on whether it is multiple choice:

* multiple choice, any benchmark but ``shapes``: :data:`LETTER_INSTRUCTION` (the options are
  listed and the target is the letter, as LLaVA-1.5 asks MMBench and A-OKVQA);
* the benchmark's entry in :data:`LABEL_INSTRUCTIONS` (POPE: yes/no; TallyQA: a number);
* otherwise :data:`DEFAULT_INSTRUCTION` ("Answer with a single word or phrase.").

``shapes`` examples keep the default for every question (multiple choice included), so numbers
measured before these prompts existed keep their meaning. :data:`LABEL_PROMPTS_VERSION` is
written into mixture manifests; a student trained on one version should be asked in it.
"""

from __future__ import annotations

from typing import Mapping

from vpd.types import Example

LABEL_PROMPTS_VERSION = "2"  # 1: one instruction for everything
DEFAULT_INSTRUCTION = "Answer with a single word or phrase."
LETTER_INSTRUCTION = "Answer with the option's letter from the given choices directly."

#: benchmark -> instruction for its open (not multiple-choice) questions.
LABEL_INSTRUCTIONS: Mapping[str, str] = {
    "pope": "Answer yes or no.",
    "tallyqa": "Answer with a number.",
}

#: Keep the default instruction for every question of these (their numbers predate the table above).
UNCHANGED = frozenset({"shapes"})

#: ``qtype`` values the importers (:mod:`vpd.benchmarks.importers`) give, -> benchmark name.
_QTYPE_BENCHMARK = {"mmbench": "mmbench", "aokvqa": "aokvqa", "gqa": "gqa", "ocrvqa": "ocrvqa"}


def benchmark_of(example: Example) -> str | None:
    """The example's benchmark: ``metadata["benchmark"]`` (benchmark loaders), ``shapes`` for the
    shapes world (its ``template`` and ``scene``), ``metadata["source"]`` (the VQAv2, OK-VQA, POPE,
    TallyQA and OCR-VQA imports),
    or the importers' ``qtype``; None when unknown."""
    meta = example.metadata or {}
    if meta.get("benchmark"):
        return str(meta["benchmark"]).lower()
    if "template" in meta and "scene" in meta:
        return "shapes"
    if meta.get("source"):
        return str(meta["source"]).lower()
    if example.qtype in _QTYPE_BENCHMARK:
        return _QTYPE_BENCHMARK[example.qtype]
    return None


def label_instruction(example: Example) -> str:
    """The instruction line that ends the example's label prompt (see the module docstring)."""
    bench = benchmark_of(example)
    if bench in UNCHANGED:
        return DEFAULT_INSTRUCTION
    if example.choices:
        return LETTER_INSTRUCTION
    return LABEL_INSTRUCTIONS.get(bench or "", DEFAULT_INSTRUCTION)
