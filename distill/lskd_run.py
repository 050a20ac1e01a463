"""The ``vpd lskd`` stage: verbalise images, write triples, label, score with the critic, keep.

Output folder ``RUN/``:

* ``verbalisations.jsonl`` — one :class:`~vpd.distill.verbalize.Verbalisation` per image;
* ``lskd_all.jsonl`` — every generated triple (LSKD schema + ``label``, ``kept``), including the
  ``perturbed`` negatives made only to train the critic;
* ``lskd.jsonl`` — the kept triples (critic score >= threshold; sources ``llm``/``verbaliser``);
* ``lskd_rejects.jsonl`` — completions/triples that could not be parsed or cite unknown regions;
* ``critic/`` — the critic trained here (when none was given and labels exist);
* ``report.json`` — section ``lskd`` (counts, the critic's kind (``critic_kind``) and P/R/F1 on
  held-out labelled triples, the accuracy of kept vs all triples, ``unfiltered`` and ``warnings``).

The critic is of kind ``critic_kind`` (:mod:`vpd.distill.critic_kinds`: ``image``, the default, sees
the cited regions' pixels; ``text`` reads only the triple and the verbalisation); each record of
``lskd_all.jsonl`` names the kind that gave its ``prediction`` (``critic_kind``, null if unscored).
A ``--critic`` folder must hold a critic of that kind (else ValueError).

Only the images of dataset split ``split`` are used (``vpd lskd --split``, default ``train`` on the
CLI; None: every split; :mod:`vpd.splits`); each triple records its image's split (``split``), so
``vpd mix --split`` can tell them apart; ``config.json`` records the split used.

Without labels (no scene records) and without ``--critic`` no critic exists: every generated
triple is kept **unscored**. That run is marked ``unfiltered: true``, and a warning goes to the
console (``log``) and into the report's ``warnings``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vpd.distill.critic import Metrics, evaluate_scores
from vpd.distill.critic_kinds import CRITIC_KINDS, DEFAULT_KIND, load_critic, train_kind
from vpd.distill.lskd import LSKD_PROMPT_VERSION, Rejected, Triple, from_record, llm_triples, to_record
from vpd.distill.lskd_templates import perturbed_triples, verbaliser_triples
from vpd.distill.run_io import ReadStats, iter_jsonl, merge_report, write_jsonl
from vpd.distill.shapes_labels import VOCAB, label_triple, scenes_by_image
from vpd.distill.verbalize import Verbalisation, verbalise

OUTPUT_SOURCES = ("llm", "verbaliser")


@dataclass(kw_only=True)
class LskdConfig:
    data: str
    out: str
    llm: str | None = "gemma"  # None / "none": no LLM triples
    tools: str = "shapes"
    critic: str | None = None
    critic_kind: str = DEFAULT_KIND  # "image" | "text" (vpd.distill.critic_kinds)
    threshold: float = 0.8
    max_images: int | None = None
    split: str | None = None  # dataset split whose images are used (None / "all": every split)
    llm_samples: int = 1
    temperature: float = 0.7
    max_tokens: int = 200
    per_image: int = 6
    negatives: bool = True
    test_frac: float = 0.3
    seed: int = 0


@dataclass(kw_only=True)
class LskdReport:
    images: int = 0
    verbalised: int = 0
    verbalise_errors: list[str] = field(default_factory=list)
    triples: dict[str, int] = field(default_factory=dict)
    labelled: dict[str, int] = field(default_factory=dict)
    rejected: dict[str, int] = field(default_factory=dict)
    llm: dict[str, Any] = field(default_factory=dict)
    critic: dict[str, Any] = field(default_factory=dict)
    critic_kind: str | None = None  # the kind that scored the triples (None: unscored)
    kept: int = 0
    kept_by_source: dict[str, int] = field(default_factory=dict)
    bad_lines: int = 0
    unfiltered: bool = False  # no critic: the kept triples were never scored
    warnings: list[str] = field(default_factory=list)
    seconds: dict[str, float] = field(default_factory=dict)
    prompt_version: str = LSKD_PROMPT_VERSION

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def _distinct_images(examples: Sequence[Any]) -> list[str]:
    seen: dict[str, None] = {}
    for ex in examples:
        seen.setdefault(ex.image, None)
    return list(seen)


def _progress(total: int, label: str):
    from rich.progress import Progress

    prog = Progress(transient=True)
    task = prog.add_task(label, total=total)
    return prog, (lambda k=1: prog.advance(task, k))


def label_all(triples: list[Triple], verbs: dict[str, Verbalisation], scenes: dict[str, list[dict]]) -> list[Triple]:
    """Scene labels for triples whose image has a scene (others keep their label)."""
    out = []
    for t in triples:
        scene, verb = scenes.get(t.image), verbs.get(t.image)
        if scene is None or verb is None:
            out.append(t)
            continue
        label, why = label_triple(t, verb, scene)
        out.append(replace(t, label=label, meta={**t.meta, "label_reason": why}))
    return out


def run_lskd(cfg: LskdConfig, *, sampler: Any = None, toolbox: Any = None, embedder: Any = None,
             show_progress: bool = True, log: Any = print, mapper: Any = None) -> LskdReport:
    """Run the whole stage (see the module docstring). ``sampler``/``toolbox``/``embedder`` override
    the specs (for reuse across calls).

    ``mapper(images, cfg) -> (verbs, errors, (llm_triples, rejects, counts))`` replaces the per-image
    work (verbalisation and LLM triples), e.g. with Ray shards (:func:`vpd.ray_engine.lskd_ray_mapper`);
    labelling, the critic and keeping stay global here.
    """
    from vpd.datasets import read_examples

    CRITIC_KINDS.get(cfg.critic_kind)  # an unknown kind fails before any work ("did you mean ...")
    # a --critic of the wrong kind is refused before any work too
    loaded = load_critic(cfg.critic, cfg.critic_kind, embedder=embedder) if cfg.critic else None
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    report = LskdReport()
    t0 = time.perf_counter()
    from vpd.splits import example_split, in_split

    examples, bad = read_examples(cfg.data)
    examples = [ex for ex in examples if in_split(ex, cfg.split)]
    image_split = {ex.image: example_split(ex) or "" for ex in examples}
    report.bad_lines = len(bad)
    images = _distinct_images(examples)[: cfg.max_images] if cfg.max_images else _distinct_images(examples)
    report.images = len(images)
    scenes = scenes_by_image(examples)

    mapped: Any = mapper(images, cfg) if mapper is not None else None
    # 1. verbalise
    if mapped is not None:
        verbs_m, errors_m, _ = mapped
        verbs = dict(verbs_m)
        report.verbalise_errors.extend(errors_m)
        images = []  # already done by the mapper
    if toolbox is None and mapped is None:
        from vpd.tools import load

        toolbox = load(cfg.tools)
    if mapped is None:
        verbs: dict[str, Verbalisation] = {}
    prog, tick = _progress(len(images), "verbalise") if (show_progress and images) else (None, lambda k=1: None)
    if prog:
        prog.start()
    try:
        for img in images:
            try:
                v = verbalise(img, toolbox)
                verbs[img] = v
                report.verbalise_errors.extend(f"{img}: {e}" for e in v.errors[:3])
            except Exception as exc:  # unreadable image: recorded, the run goes on
                report.verbalise_errors.append(f"{img}: {type(exc).__name__}: {exc}")
            tick()
    finally:
        if prog:
            prog.stop()
    report.verbalise_errors = report.verbalise_errors[:50]
    report.verbalised = len(verbs)
    write_jsonl(out / "verbalisations.jsonl", [v.to_dict() for v in verbs.values()])
    report.seconds["verbalise"] = round(time.perf_counter() - t0, 2)

    # 2. triples
    t1 = time.perf_counter()
    triples: list[Triple] = []
    rejects: list[Rejected] = []
    if mapped is not None and cfg.llm and cfg.llm != "none":
        ts, rj, counts = mapped[2]
        triples.extend(ts)
        rejects.extend(rj)
        report.llm = {"spec": cfg.llm, **counts}
    elif cfg.llm and cfg.llm != "none":
        if sampler is None:
            from vpd.programs.samplers import load_sampler

            sampler = load_sampler(cfg.llm)
        vlist = list(verbs.values())
        prog, tick = _progress(len(vlist), f"LSKD triples ({cfg.llm})") if show_progress else (None, lambda k=1: None)
        if prog:
            prog.start()
        try:
            ts, rj, counts = llm_triples(vlist, sampler, n=cfg.llm_samples, temperature=cfg.temperature,
                                         max_tokens=cfg.max_tokens, seed=cfg.seed, progress=tick)
        finally:
            if prog:
                prog.stop()
        triples.extend(ts)
        rejects.extend(rj)
        report.llm = {"spec": cfg.llm, **counts}
    base: list[Triple] = []
    for v in verbs.values():
        base.extend(verbaliser_triples(v, per_image=cfg.per_image, seed=cfg.seed))
    triples.extend(base)
    if cfg.negatives and scenes:
        for v in verbs.values():
            mine = [t for t in base if t.image == v.image]
            triples.extend(perturbed_triples(v, mine, VOCAB, seed=cfg.seed))
    triples = [replace(t, index=f"{i:06d}-{t.index}") for i, t in enumerate(triples)]
    for r in rejects:
        report.rejected[r.stage] = report.rejected.get(r.stage, 0) + 1
    for t in triples:
        report.triples[t.source] = report.triples.get(t.source, 0) + 1
    write_jsonl(out / "lskd_rejects.jsonl", [r.to_dict() for r in rejects])
    report.seconds["generate"] = round(time.perf_counter() - t1, 2)

    # 3. labels (shapes world: from the scene)
    triples = label_all(triples, verbs, scenes)
    for t in triples:
        key = f"{t.source}:{'none' if t.label is None else ('accept' if t.label else 'reject')}"
        report.labelled[key] = report.labelled.get(key, 0) + 1

    # 4. critic
    t2 = time.perf_counter()
    critic: Any = None
    test_ids: set[str] | None = None
    if cfg.critic:
        critic = loaded
        report.critic = {"kind": cfg.critic_kind, "path": str(cfg.critic), "trained_here": False}
    elif any(t.label is not None for t in triples):
        try:
            critic, _, summary = train_kind(cfg.critic_kind, triples, verbs, embedder=embedder,
                                            test_frac=cfg.test_frac, seed=cfg.seed, threshold=cfg.threshold)
            critic.save(out / "critic")
            test_ids = set(summary["test_indices"])
            report.critic = {"kind": cfg.critic_kind, "path": str(out / "critic"), "trained_here": True,
                             **{k: v for k, v in summary.items() if k not in ("test_indices", "test_images")}}
        except ValueError as exc:
            report.critic = {"kind": cfg.critic_kind, "error": str(exc)}
            log(f"[yellow]critic not trained: {exc}[/]" if show_progress else f"critic not trained: {exc}")
    if critic is not None:
        scores = critic.score(triples, verbs)
        triples = [replace(t, prediction=float(s)) for t, s in zip(triples, scores)]
        report.critic_kind = cfg.critic_kind
    report.seconds["critic"] = round(time.perf_counter() - t2, 2)

    # 5. evaluation on held-out labelled triples, keep
    if critic is not None:
        held = [t for t in triples if t.label is not None and (test_ids is None or t.index in test_ids)]
        if held:
            m = evaluate_scores(np.asarray([t.prediction for t in held]), [bool(t.label) for t in held], cfg.threshold)
            report.critic["heldout"] = m.to_dict()
            real = [t for t in held if t.source in OUTPUT_SOURCES]
            if real:
                mr = evaluate_scores(np.asarray([t.prediction for t in real]), [bool(t.label) for t in real], cfg.threshold)
                report.critic["heldout_output_sources"] = mr.to_dict()
            for src in sorted({t.source for t in held}):
                sub = [t for t in held if t.source == src]
                report.critic.setdefault("heldout_by_source", {})[src] = evaluate_scores(
                    np.asarray([t.prediction for t in sub]), [bool(t.label) for t in sub], cfg.threshold).to_dict()
    kept_flags = [t.source in OUTPUT_SOURCES and (t.prediction is None or t.prediction >= cfg.threshold)
                  for t in triples]
    if critic is None:
        report.critic.setdefault("note", "no critic: every triple kept unscored")
        report.unfiltered = True
        why = report.critic.get("error") or "the data has no labels (scene records) and no --critic was given"
        report.warnings.append(
            f"unfiltered LSKD: no critic ({why}); all {sum(kept_flags)} generated triples are kept unscored. "
            "Pass --critic DIR (a trained critic) or data with labels to filter them.")
        log(f"[yellow]warning: {report.warnings[-1]}[/]" if show_progress else f"warning: {report.warnings[-1]}")
    all_records, kept_records = [], []
    for t, k in zip(triples, kept_flags):
        rec = to_record(t, verbs.get(t.image), split=image_split.get(t.image, ""))
        rec["kept"] = bool(k)
        rec["critic_kind"] = report.critic_kind if t.prediction is not None else None
        rec["label_reason"] = t.meta.get("label_reason")
        all_records.append(rec)
        if k:
            kept_records.append(rec)
            report.kept_by_source[t.source] = report.kept_by_source.get(t.source, 0) + 1
    report.kept = len(kept_records)
    write_jsonl(out / "lskd_all.jsonl", all_records)
    write_jsonl(out / "lskd.jsonl", kept_records)
    report.seconds["total"] = round(time.perf_counter() - t0, 2)
    merge_report(out, "lskd", report.to_dict())
    (out / "config.json").write_text(json.dumps({"stage": "lskd", **cfg.__dict__}, indent=2, default=str))
    return report


def read_lskd(path: str | Path, stats: ReadStats | None = None) -> list[Triple]:
    """Triples of an LSKD JSONL file (``lskd.jsonl`` or ``lskd_all.jsonl``); bad lines counted."""
    out = []
    for rec in iter_jsonl(Path(path), stats):
        try:
            out.append(from_record(rec))
        except (KeyError, TypeError, ValueError) as exc:
            if stats is not None:
                stats.add(str(path), exc)
    return out


def read_verbalisations(path: str | Path) -> dict[str, Verbalisation]:
    return {v.image: v for v in (Verbalisation.from_dict(r) for r in iter_jsonl(Path(path)))}


def _parse_label(value: Any) -> bool | None:
    if isinstance(value, bool):
        return value
    if isinstance(value, (int, float)):
        return bool(value)
    s = str(value).strip().lower()
    if s in ("accept", "accepted", "yes", "true", "1", "good", "keep"):
        return True
    if s in ("reject", "rejected", "no", "false", "0", "bad", "drop"):
        return False
    return None


def train_critic_on_run(run: str | Path, *, labels: str | Path | None = None, out: str | Path | None = None,
                        threshold: float = 0.8, test_frac: float = 0.3, seed: int = 0,
                        embedder: Any = None, kind: str = DEFAULT_KIND) -> tuple[Metrics, dict[str, Any]]:
    """``vpd lskd train-critic``: train a ``kind`` critic (:mod:`vpd.distill.critic_kinds`) on the
    run's labelled triples (or a human-labelled JSONL file of LSKD records with a ``label`` of
    accept/reject), save to ``out`` (default ``RUN/critic``), write the metrics and the kind into
    ``RUN/report.json`` (section ``critic``)."""
    CRITIC_KINDS.get(kind)
    run = Path(run)
    verbs = read_verbalisations(run / "verbalisations.jsonl")
    stats = ReadStats()
    if labels is not None:
        triples = []
        for rec in iter_jsonl(Path(labels), stats):
            try:
                t = from_record(rec)
                triples.append(replace(t, label=_parse_label(rec.get("label")), index=t.index or f"h{len(triples)}"))
            except (KeyError, TypeError, ValueError) as exc:
                stats.add(str(labels), exc)
    else:
        triples = read_lskd(run / "lskd_all.jsonl", stats)
    missing = sum(1 for t in triples if t.image not in verbs)
    triples = [t for t in triples if t.image in verbs]
    critic, metrics, summary = train_kind(kind, triples, verbs, embedder=embedder, test_frac=test_frac, seed=seed,
                                          threshold=threshold)
    folder = critic.save(Path(out) if out else run / "critic")
    section = {"kind": kind, "path": str(folder), "labels": str(labels) if labels else "scene",
               "heldout": metrics.to_dict(),
               "n_labelled": summary["n_labelled"], "n_train": summary["n_train"], "n_test": summary["n_test"],
               "skipped_no_verbalisation": missing, "bad_lines": stats.bad_lines}
    merge_report(run, "critic", section)
    return metrics, section
