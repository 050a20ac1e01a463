"""``vpd adapt``: adapt to a written content policy from a few hundred labelled memes.

VPD's Hateful Memes experiment in miniature::

    policy + <= 300 labelled memes ─▶ synth programs over moderation tools (ocr, nudity, vqa,
    llm_query) ─▶ verify against the labels ─▶ rationalize verified traces ─▶ two mixtures
    (label-only; labels + rationales) ─▶ two tiny students ─▶ AUROC / accuracy on the test memes of
      (a) the programs alone (stage 1's k programs, replayed; majority vote, P(yes) = vote share)
      (b) the label-only student      } score = the student's P("yes") for the first answer token,
      (c) the rationale-trained student }   label = its decoded answer

Data: a Hateful-Memes-format folder (``train.jsonl`` with labels, ``test.jsonl``, ``img/``), e.g.
from ``vpd data memes``. Answers are ``yes``/``no``. The policy text is kept in the run
(``policy.md``). The program writer sees the policy: its first paragraph (with the list that
follows it, Markdown removed, at most :data:`BRIEF_CHARS` characters; :func:`policy_brief`) is
appended to :data:`PROGRAM_QUESTION` (:func:`program_question`), the one question every training
and test meme is asked in the synth runs (question-level reuse: programs are sampled once per run).
The students are trained and asked with the short :data:`~vpd.benchmarks.hateful_memes.QUESTION`:
the policy is what they learn from the labels and rationales, not something they read.

Smoke mode (``AdaptConfig.smoke``, ``vpd adapt --smoke``): the ``smoke`` training recipe, at most
8 test memes — the whole pipeline in a couple of minutes, for tests and first tries.

Output ``RUN/``: ``data/{train,test}/examples.jsonl``, ``synth/`` (a synth run: candidates,
verified, rationales), ``mix_label/``, ``mix_rationale/`` (mixtures in the contract format),
``student_label/``, ``student_rationale/`` (checkpoints), ``eval_{programs,label,rationale}/``
(results.json + results.md) and ``adapt_report.{json,md}``. Each row's AUROC comes with a DeLong
95% interval over the test memes (:func:`vpd.benchmarks.auroc_interval.auroc_interval`).

Students start from scratch (``AdaptConfig.preset``, default ``tiny``) or, with ``AdaptConfig.init``
(``vpd adapt --init BASE``), from a ``vpd pretrain`` base, as ``vpd train --init BASE`` does: the
base's tokenizer and architecture are kept, so a ``preset`` naming another architecture is
refused (:func:`vpd.adapt_init.student_init`), as is a folder missing one of its files. The report
records the base (path, preset, :func:`vpd.evaluation.model_identity` id) under ``init``.

Stages talk through the stage contracts (docs/contracts.md): :func:`vpd.synth.run_synth`,
:func:`vpd.distill.rationalize.rationalize_run`, ``vpd train`` and ``vpd predict``.
"""

from __future__ import annotations

import json
import random
import re
import subprocess
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from vpd.adapt_init import DEFAULT_PRESET, init_line, student_init
from vpd.benchmarks.hateful_memes import QUESTION
from vpd.benchmarks.registry import get_benchmark
from vpd.datasets import write_examples
from vpd.types import Example

#: Default toolbox for moderation: shapes backend for detect/vqa, RapidOCR, NudeNet, and the
#: ``llm`` backend (packaged Gemma 3 270M) for ``llm_query``.
DEFAULT_TOOLS = "shapes,ocr=rapidocr,nudity=nudenet,llm_query=llm"
#: The question the program writer is asked (the policy brief follows it).
PROGRAM_QUESTION = "Is this meme hateful according to the policy?"
#: Longest policy brief shown to the program writer (characters).
BRIEF_CHARS = 600
#: Test memes used in smoke mode.
SMOKE_TEST = 8
#: How each row's AUROC interval is computed (written into the report).
AUROC_CI_METHOD = "DeLong variance over the test memes, Wald interval clipped to [0, 1]"


@dataclass(frozen=True, kw_only=True)
class AdaptConfig:
    """Settings of one ``vpd adapt`` run (times in seconds)."""

    policy: str
    data: str
    out: str
    max_labels: int = 300
    llm: str = "gemma"
    tools: str = DEFAULT_TOOLS
    k: int = 4
    steps: int = 300
    preset: str | None = None  # student preset (None: DEFAULT_PRESET, or the base's with `init`)
    init: Path | None = None  # a `vpd pretrain` base every student starts from (None: from scratch)
    seed: int = 0
    timeout_s: float = 10.0
    val_frac: float = 0.1
    max_test: int | None = None  # use at most this many test memes (None = all)
    smoke: bool = False  # `smoke` training recipe and at most SMOKE_TEST test memes
    workers: int = 2  # sandbox workers
    max_tokens: int = 256  # program-writer completion length
    resume: bool = False  # continue the synth run in ``out`` (examples already done are kept)


def policy_brief(policy: str, max_chars: int = BRIEF_CHARS) -> str:
    """The policy's first paragraph (with a list right after it), plain text on one line.

    Markdown headings are skipped, ``**``/``__``/backticks removed, whitespace collapsed; longer
    than ``max_chars`` is cut at a word boundary with "...".
    """
    blocks = [b.strip() for b in re.split(r"\n\s*\n", policy) if b.strip()]
    blocks = [b for b in blocks if not b.startswith("#")]
    if not blocks:
        return ""
    keep = [blocks[0]]
    if len(blocks) > 1 and re.match(r"^(\d+[.)]|[-*+])\s", blocks[1]):
        keep.append(blocks[1])
    text = " ".join(" ".join(keep).split())
    text = re.sub(r"(\*\*|__|`)", "", text)
    if len(text) > max_chars:
        text = text[:max_chars].rsplit(" ", 1)[0].rstrip(",;:") + "..."
    return text


def program_question(policy: str) -> str:
    """What the program writer is asked about every meme: :data:`PROGRAM_QUESTION` + the brief."""
    brief = policy_brief(policy)
    return f"{PROGRAM_QUESTION} Policy: {brief}" if brief else PROGRAM_QUESTION


def memes_to_examples(path: Path, *, limit: int | None, seed: int, split: str) -> list[Example]:
    """Hateful-Memes jsonl -> Examples asking :data:`QUESTION` (answer yes/no; images absolute)."""
    items = get_benchmark("hateful_memes").load(path)
    if limit is not None and len(items) > limit:
        items = random.Random(seed).sample(items, limit)
    return [Example(id=it.id, image=str(Path(it.image).resolve()), question=QUESTION,
                    answer=None if it.gold is None else ("yes" if it.gold == 1 else "no"),
                    qtype="moderation", metadata={"split": split, "text": it.raw.get("text", "")})
            for it in items]


def write_mixture(examples: list[Example], rationales: dict[str, str], out: Path, *, with_rationales: bool,
                  val_frac: float, seed: int) -> dict[str, int]:
    """A mixture in the contract format: label tasks for every example, plus rationale tasks for
    the examples with a verified rationale when ``with_rationales``. Returns counts."""
    from vpd.distill.mixture import label_prefix, rationale_prefix, rationale_suffix

    rng = random.Random(seed)
    ids = [ex.id for ex in examples]
    rng.shuffle(ids)
    n_val = max(1, int(len(ids) * val_frac)) if len(ids) > 4 else 0
    val_ids = set(ids[:n_val])
    rows: dict[str, list[dict]] = {"train": [], "val": []}
    for ex in examples:
        part = "val" if ex.id in val_ids else "train"
        rows[part].append({"id": f"{ex.id}-label", "image": ex.image,
                           "prefix": label_prefix(ex),
                           "suffix": ex.answer, "task": "label", "source": "adapt", "weight": 1.0,
                           "example_id": ex.id})
        if with_rationales and ex.id in rationales:
            rows[part].append({"id": f"{ex.id}-rationale", "image": ex.image,
                               "prefix": rationale_prefix(ex),
                               "suffix": rationale_suffix(rationales[ex.id], str(ex.answer)),
                               "task": "rationale", "source": "adapt", "weight": 1.0, "example_id": ex.id})
    out.mkdir(parents=True, exist_ok=True)
    for part, lines in rows.items():
        with (out / f"{part}.jsonl").open("w", encoding="utf-8") as fh:
            for r in lines:
                fh.write(json.dumps(r, ensure_ascii=False) + "\n")
    counts = {f"{part}_{task}": sum(1 for r in lines if r["task"] == task)
              for part, lines in rows.items() for task in ("label", "rationale")}
    (out / "manifest.json").write_text(json.dumps({"counts": counts, "sources": ["adapt"]}, indent=1))
    return counts


def read_rationales(run: Path) -> dict[str, str]:
    """example id -> rationale text, for kept rationales of ``run/rationales.jsonl``."""
    out: dict[str, str] = {}
    path = run / "rationales.jsonl"
    if not path.is_file():
        return out
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            continue
        if rec.get("kept", True) and rec.get("rationale"):
            out[str(rec["example"]["id"])] = str(rec["rationale"])
    return out


def _vpd(args: list[str]) -> None:
    proc = subprocess.run([sys.executable, "-c", "from vpd.cli import main; main()", *args],
                          capture_output=True, text=True)
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"`vpd {' '.join(args)}` failed (exit {proc.returncode}):\n{tail}")


def train_student(mixture: Path, out: Path, *, preset: str | None, steps: int | None, seed: int,
                  recipe: str = "default", init: Path | None = None) -> Path:
    """Train a student on ``mixture`` with ``vpd train`` (a subprocess: memory is freed after).

    ``steps=None`` keeps the recipe's own number of steps. With ``init`` the student starts from that
    base (``vpd train --init``; ``preset`` is not passed: the base fixes the architecture)."""
    model = ["--init", str(init)] if init is not None else ["--model", preset or DEFAULT_PRESET]
    args = ["train", "--data", str(mixture), "--out", str(out), *model, "--recipe", recipe, "--seed", str(seed)]
    if steps is not None:
        args += ["--steps", str(steps)]
    _vpd(args)
    return out


def _programs_answers(preds: dict[str, dict]) -> dict[str, dict]:
    """Program majority answers with P(yes) = the share of 'yes' votes as the score."""
    out = {}
    for ex_id, rec in preds.items():
        votes = rec.get("votes")
        score = None
        if isinstance(votes, dict) and votes:
            total = sum(float(v) for v in votes.values())
            yes = sum(float(v) for k, v in votes.items() if str(k).strip().lower() in ("yes", "true", "1"))
            score = yes / total if total else None
        out[ex_id] = {**rec, "score": score}
    return out


def _asked(examples: list[Example], question: str) -> list[Example]:
    """The same examples asking ``question`` (what the program writer sees)."""
    import dataclasses

    return [dataclasses.replace(ex, question=question) for ex in examples]


def _shared_llm(cfg: AdaptConfig, sampler: Any) -> tuple[Any, bool]:
    """One program-writer sampler for the whole run, also serving ``llm_query`` when the ``llm``
    tool backend uses the same spec (one model in memory). Returns (sampler, owned)."""
    from vpd.tools.backends.llm import share_sampler

    owned = sampler is None
    if sampler is None:
        from vpd.programs.sampler_base import load_sampler

        sampler = load_sampler(cfg.llm)
    share_sampler(cfg.llm, sampler)
    return sampler, owned


def run_adapt(cfg: AdaptConfig, *, console: Any = None, sampler: Any = None) -> dict[str, Any]:
    """Run every stage (see the module docstring); returns the report (also written to the run).

    ``sampler`` replaces the one loaded from ``cfg.llm`` (the caller keeps ownership)."""
    from vpd.benchmarks.auroc_interval import auroc_interval
    from vpd.distill.rationalize import rationalize_run
    from vpd.evaluation import EvalRecord, evaluate_predictions, write_predictions, write_results
    from vpd.solvers import predict_with_model, predict_with_programs, yes_probabilities
    from vpd.synth import SynthConfig, run_synth
    from vpd.tools.backends.llm import release_sampler

    say = console.print if console is not None else (lambda *a, **k: None)
    out = Path(cfg.out)
    data = Path(cfg.data)
    init = student_init(cfg)  # refuses a bad --init before any work
    out.mkdir(parents=True, exist_ok=True)
    policy = Path(cfg.policy).read_text(encoding="utf-8")
    asked = program_question(policy)
    (out / "policy.md").write_text(policy, encoding="utf-8")
    (out / "config.json").write_text(json.dumps({**asdict(cfg), "program_question": asked}, indent=1,
                                                   default=str))
    if cfg.max_labels > 300:
        say("[yellow]note:[/] more than 300 labels; VPD's setting uses a few hundred")
    max_test = min(cfg.max_test or SMOKE_TEST, SMOKE_TEST) if cfg.smoke else cfg.max_test
    recipe = "smoke" if cfg.smoke else "default"

    train = memes_to_examples(data / "train.jsonl", limit=cfg.max_labels, seed=cfg.seed, split="train")
    test = memes_to_examples(data / "test.jsonl", limit=max_test, seed=cfg.seed, split="test")
    if not train or not test:
        raise ValueError(f"{data}: need labelled train.jsonl and test.jsonl memes (found {len(train)} / {len(test)})")
    write_examples(_asked(train, asked), out / "data" / "train" / "examples.jsonl")
    write_examples(_asked(test, asked), out / "data" / "test" / "examples.jsonl")
    test_file = out / "data" / "test.jsonl"  # the scored test memes, Hateful Memes format
    keep = {ex.id for ex in test}
    with test_file.open("w", encoding="utf-8") as fh:
        for line in (data / "test.jsonl").read_text(encoding="utf-8").splitlines():
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            if str(rec.get("id")) in keep:
                rec["img"] = str((data / str(rec["img"])).resolve())
                fh.write(json.dumps(rec) + "\n")
    bench = get_benchmark("moderation")
    bench_examples = bench.to_examples(bench.load(test_file), out / "unused")
    say(f"adapt: {len(train)} labelled training memes, {len(test)} test memes; programs are asked: {asked!r}")

    sampler, owned = _shared_llm(cfg, sampler)
    rows: list[dict[str, Any]] = []

    def score(name: str, system: str, ans: dict[str, dict], source: dict) -> EvalRecord:
        preds = write_predictions(bench, bench_examples, ans, out / f"eval_{name}" / "predictions.jsonl")
        rec = evaluate_predictions(bench, test_file, preds, source=source)
        write_results(rec, out / f"eval_{name}")
        per_item = rec.results.per_item
        ci = auroc_interval([r["score"] for r in per_item], [r["gold"] for r in per_item])
        rows.append({"system": system, "auroc": rec.results.metrics["auroc"],
                     "auroc_ci": None if ci is None else [round(ci.low, 4), round(ci.high, 4)],
                     "accuracy": rec.results.metrics["accuracy"], "n": rec.results.counts.get("n"),
                     "results": str(out / f"eval_{name}")})
        say(f"  {system}: AUROC {_num(rec.results.metrics['auroc'])} {_ci(rows[-1]['auroc_ci'])}, "
            f"accuracy {_num(rec.results.metrics['accuracy'])}")
        return rec

    try:
        # 1. programs over moderation tools, verified against the labels
        say("stage 1/5: synth (sample programs, verify them against the labels)")
        synth = run_synth(SynthConfig(data=str(out / "data" / "train"), out=str(out / "synth"), llm=cfg.llm,
                                      tools=cfg.tools, k=cfg.k, labels=True, checker="yesno", overwrite=not cfg.resume,
                                      resume=cfg.resume,
                                      seed=cfg.seed, timeout_s=cfg.timeout_s, workers=cfg.workers,
                                      max_tokens=cfg.max_tokens, progress=console is not None),
                          sampler=sampler)

        # (a) programs alone on the test memes: the k programs of stage 1 (written from the question
        # and policy, before any label was seen) replayed from the synth run, majority vote per meme
        say("stage 2/5: programs as the solver on the test memes (no labels)")
        from vpd.programs.sampler_base import load_sampler

        answers = predict_with_programs(_asked(test, asked), llm=cfg.llm, tools=cfg.tools,
                                        run_dir=out / "programs_test", k=cfg.k, timeout_s=cfg.timeout_s,
                                        workers=cfg.workers, sampler=load_sampler(f"replay:{out / 'synth'}"),
                                        progress=console is not None, seed=cfg.seed, max_tokens=cfg.max_tokens)
        score("programs", "(a) programs alone", _programs_answers(answers),
              {"kind": "programs", "llm": cfg.llm, "tools": cfg.tools, "k": cfg.k, "run": str(out / "programs_test")})
    finally:
        if owned:
            release_sampler(cfg.llm)  # frees the model before the students train
        else:
            _forget(cfg.llm)

    # rationales from the verified traces
    say("stage 3/5: rationalize verified traces")
    rationalize_run(out / "synth", show_progress=console is not None)
    rationales = read_rationales(out / "synth")

    say("stage 4/5: mixtures and students")
    mix_counts = {
        "label": write_mixture(train, rationales, out / "mix_label", with_rationales=False,
                               val_frac=cfg.val_frac, seed=cfg.seed),
        "rationale": write_mixture(train, rationales, out / "mix_rationale", with_rationales=True,
                                   val_frac=cfg.val_frac, seed=cfg.seed),
    }
    steps = None if cfg.smoke else cfg.steps
    for name, system in (("label", "(b) label-only student"), ("rationale", "(c) rationale-trained student")):
        ckpt = train_student(out / f"mix_{name}", out / f"student_{name}", preset=cfg.preset, steps=steps,
                             seed=cfg.seed, recipe=recipe, init=None if init is None else Path(init["path"]))
        say(f"stage 5/5: evaluating {system}")
        ans = predict_with_model(ckpt, test, work=out / f"eval_{name}")
        for ex_id, prob in yes_probabilities(ckpt, test).items():  # AUROC from P(yes), as VPD reports it
            ans.setdefault(ex_id, {"id": ex_id, "prediction": ""})["score"] = prob
        score(name, system, ans, {"kind": "model", "model": str(ckpt), "mixture": str(out / f"mix_{name}"),
                                  "init": None if init is None else init["path"]})

    report = {"n_train_labels": len(train), "n_test": len(test), "program_question": asked, "rows": rows,
              "auroc_ci_method": AUROC_CI_METHOD, "init": init,
              "student_preset": init["preset"] if init else (cfg.preset or DEFAULT_PRESET),
              "synth": _synth_summary(synth.report), "rationales": len(rationales), "mixtures": mix_counts,
              "config": asdict(cfg)}
    (out / "adapt_report.json").write_text(json.dumps(report, indent=1, default=str))
    md = ["# vpd adapt", "", f"train labels: {len(train)} · test memes: {len(test)} · "
          f"verified rationales: {len(rationales)} · LLM `{cfg.llm}` · tools `{cfg.tools}` · k {cfg.k}",
          "", init_line(init, report["student_preset"]),
          "", "| system | AUROC | 95% CI | accuracy | n |", "|---|---|---|---|---|"]
    md += [f"| {r['system']} | {_num(r['auroc'])} | {_ci(r['auroc_ci'])} | {_num(r['accuracy'])} | {r['n']} |"
           for r in rows]
    md += ["", f"95% CI: {AUROC_CI_METHOD} (– with fewer than two memes of a class)."]
    (out / "adapt_report.md").write_text("\n".join(md) + "\n")
    return report


def _forget(spec: str) -> None:
    """Drop the shared reference to a caller-owned sampler without closing it."""
    from vpd.tools.backends import llm

    with llm._SHARED_LOCK:
        llm._SHARED.pop(spec, None)


def _synth_summary(report: dict[str, Any]) -> dict[str, Any]:
    keep = ("counts", "verified", "pass_rate", "examples", "yield", "failures")
    return {k: report[k] for k in keep if k in report}


def _num(v: float | None) -> str:
    return "–" if v is None else f"{v:.3f}"


def _ci(ci: list[float] | None) -> str:
    return "–" if ci is None else f"[{ci[0]:.3f}, {ci[1]:.3f}]"
