"""OK-VQA: VQA-format questions and annotations, scored with the official VQA accuracy.

OK-VQA (Marino et al., CVPR 2019) releases ``OpenEnded_mscoco_val2014_questions.json`` and
``mscoco_val2014_annotations.json`` in the VQA format (ten answers per question, each also with
its ``raw_answer``) and is scored with the VQA evaluation code; see :mod:`vpd.benchmarks.vqav2`
for the rules (``answer`` is scored, not ``raw_answer``).
"""

from __future__ import annotations

from vpd.benchmarks.registry import BENCHMARKS
from vpd.benchmarks.vqav2 import VQAv2

SCORER_VERSION = "okvqa-1.0 (GT-Vision-Lab/VQA vqaEval on OK-VQA annotations)"


@BENCHMARKS.register("okvqa")
class OKVQA(VQAv2):
    """OK-VQA open-ended questions; the VQA accuracy of :func:`vpd.benchmarks.vqav2.vqa_accuracy`."""

    name = "okvqa"
    scorer_version = SCORER_VERSION
    reference = "okvqa.allenai.org (GT-Vision-Lab/VQA vqaEval.py on mscoco_val2014_annotations.json)"
