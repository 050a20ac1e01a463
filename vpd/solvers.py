"""Solvers for ``vpd eval``: get raw answers for a list of questions from a model or from programs.

Both return ``{example_id: {"prediction": str, "score"?: float, ...}}`` and go through the stages'
public contracts (docs/contracts.md), so they work with whatever implementation is installed:

* :func:`predict_with_model` — ``vpd predict --model CKPT --data D --out F`` (the student);
* :func:`predict_with_programs` — :func:`vpd.synth.run_synth` with ``labels=False``: programs are
  sampled per question, run in the sandbox, and the majority answer is the prediction.

The questions are written as a dataset folder (``examples.jsonl``, absolute image paths) first.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from vpd.datasets import write_examples
from vpd.types import Example, JSON


class SolverError(RuntimeError):
    """A solver could not run (missing stage, failed subprocess); the message says what to do."""


def write_questions(examples: list[Example], folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    write_examples(examples, folder / "examples.jsonl")
    return folder


def read_answers(path: Path) -> dict[str, dict[str, JSON]]:
    out: dict[str, dict[str, JSON]] = {}
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
            out[str(rec["id"])] = rec
        except (json.JSONDecodeError, KeyError, TypeError):
            continue  # a broken line: that question stays unanswered (scored as missing)
    return out


MODEL_MODES = ("direct", "cot")


def predict_with_model(model: str | Path, examples: list[Example], *, work: Path, batch_size: int = 8,
                       max_new_tokens: int = 16, mode: str = "direct") -> dict[str, dict[str, JSON]]:
    """Answers of a student checkpoint, via ``vpd predict`` (runs in a subprocess, memory freed after).

    ``mode``: ``direct`` (label prompt) or ``cot`` (``vpd predict --rationale``: the prediction is the
    answer parsed from the rationale's last sentence, ``""`` when it states none; ``rationale`` kept).
    ``max_new_tokens`` is kept for API stability; ``vpd predict`` uses its own default length."""
    if mode not in MODEL_MODES:
        raise ValueError(f"unknown mode {mode!r} (modes: {', '.join(MODEL_MODES)})")
    data = write_questions(examples, work / "questions")
    out = work / "model_predictions.jsonl"
    cmd = [sys.executable, "-c", "from vpd.cli import main; main()", "predict", "--model", str(model),
           "--data", str(data), "--out", str(out), "--batch", str(batch_size)]
    if mode == "cot":
        cmd.append("--rationale")
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = (proc.stderr or proc.stdout).strip().splitlines()[-15:]
        raise SolverError("`vpd predict` failed (exit %d):\n%s" % (proc.returncode, "\n".join(tail)))
    answers = read_answers(out)
    if mode == "cot":
        for ans in answers.values():
            ans["direct_prediction"] = ans.get("prediction")
            ans["prediction"] = ans.get("cot_prediction") or ""
    return answers


def predict_with_programs(examples: list[Example], *, llm: str, tools: str, run_dir: Path, k: int = 1,
                          timeout_s: float = 5.0, workers: int = 2, sampler: object = None,
                          progress: bool = True, seed: int = 0, max_tokens: int = 256,
                          toolbox: object = None) -> dict[str, dict[str, JSON]]:
    """Programs as the solver: ``run_synth(labels=False)``; the majority answer per question.

    Each answer also carries ``votes`` (answer -> count over the k programs) and ``n_candidates``."""
    from vpd.synth import SynthConfig, run_synth

    data = write_questions(examples, run_dir.parent / f"{run_dir.name}-questions")
    cfg = SynthConfig(data=str(data), out=str(run_dir), llm=llm, tools=tools, k=k, labels=False,
                      overwrite=True, timeout_s=timeout_s, workers=workers, temperature=0.7 if k > 1 else 0.0,
                      progress=progress, seed=seed, max_tokens=max_tokens)
    run_synth(cfg, sampler=sampler, toolbox=toolbox)
    answers = read_answers(run_dir / "predictions.jsonl")
    for ans in answers.values():
        ans["prediction"] = _as_text(ans.get("prediction"))
    return answers


def _as_text(value: JSON) -> str:
    from vpd.checkers import answer_text

    return answer_text(value)


def yes_probabilities(model: str | Path, examples: list[Example], *, batch_size: int = 16) -> dict[str, float]:
    """P("yes") of a student for yes/no questions: the softmax over the first answer token
    restricted to the first tokens of ``yes`` and ``no`` (label task prompt, one prefill per batch).

    A score per example for AUROC (VPD reports Hateful Memes AUROC from the answer probability);
    examples whose image cannot be read are left out.
    """
    import numpy as np

    from vpd.distill.mixture import label_prefix
    from vpd.distill.vlm_checkpoint import load_student
    from vpd.distill.vlm_preprocess import encode_prompts, preprocess_image

    net, tok, meta = load_student(model)
    max_prefix = int(meta.get("max_prefix", 64))
    size = net.config.vision.image_size
    yes_id, no_id = tok.encode("yes")[0], tok.encode("no")[0]
    out: dict[str, float] = {}
    for i in range(0, len(examples), batch_size):
        good, pixels = [], []
        for ex in examples[i:i + batch_size]:
            try:
                pixels.append(preprocess_image(ex.image, size))
                good.append(ex)
            except (ValueError, OSError):
                continue
        if not good:
            continue
        tokens, valid = encode_prompts(tok, [label_prefix(ex) for ex in good], max_prefix)
        logits, _ = net.prefill(np.stack(pixels), tokens, valid, cache_size=net.config.num_image_tokens + max_prefix)
        pair = np.asarray(logits, dtype=np.float64)[:, [yes_id, no_id]]
        pair -= pair.max(axis=1, keepdims=True)
        p = np.exp(pair)
        for ex, row in zip(good, p / p.sum(axis=1, keepdims=True)):
            out[ex.id] = float(row[0])
    return out
