"""``vpd lskd compare-critics``: the text-only and the image-aware critic on the same held-out triples.

Also ``python -m vpd.distill.critic_compare RUN``; both print :func:`format_table` and :func:`summary_line`.

Training data: the run's scene-labelled triples (``lskd_all.jsonl``) plus an optional
human-labelled JSONL (LSKD records with ``label`` accept/reject), plus **simulated tool errors**
(:func:`tool_error_triples`): for attribute triples whose label is *correct*, the region's
verbalisation is changed to another value and the triple rewritten to agree with it, labelled
wrong (the pixels and the scene still say the old value). That is the case only pixels can
catch: the text agrees with what the tools said. Both critics train on the same training split
(by image: :func:`~vpd.distill.critic.split_by_image`, same ``seed`` and ``test_frac``) and are
scored on the same held-out triples at the same threshold (0.8, as in LSKD).
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vpd.distill.critic import MiniLMEmbedder, evaluate_scores, split_by_image, train_critic
from vpd.distill.critic_image import corrupt_verbalisation, text_features, train_image_critic
from vpd.distill.lskd import Triple, from_record, image_file_name
from vpd.distill.lskd_templates import _attr_triples
from vpd.distill.run_io import ReadStats, iter_jsonl, merge_report
from vpd.distill.shapes_labels import VOCAB
from vpd.distill.verbalize import Verbalisation


def tool_error_triples(triples: Sequence[Triple], verbs: dict[str, Verbalisation], *, seed: int = 0,
                       vocab: dict[str, Sequence[str]] = VOCAB) -> list[tuple[Triple, Verbalisation]]:
    """Wrong triples that agree with a corrupted verbalisation: ``(triple, its verbalisation)`` pairs.

    Made from correct ``What <attr> is ... [k]?`` triples (label True): the tools' value becomes
    another one of ``vocab[attr]`` in a copy of the verbalisation, and the triple is rewritten from it."""
    out: list[tuple[Triple, Verbalisation]] = []
    for i, t in enumerate(triples):
        v = verbs.get(t.image)
        if t.label is not True or v is None or len(t.refs) != 1:
            continue
        region = v.region(t.refs[0])
        for attr, values in vocab.items():
            if region is None or not t.question.startswith(f"What {attr} ") or region.attributes.get(attr) not in values:
                continue
            rng = random.Random(f"tool-error:{seed}:{image_file_name(t.image)}:{i}")
            wrong = rng.choice([x for x in values if x != region.attributes[attr]])
            bad = corrupt_verbalisation(v, region.id, attr, wrong)
            made = [m for m in _attr_triples(bad, bad.region(region.id)) if m.question == t.question]
            if made:
                out.append((replace(made[0], source="tool_error", index=f"tool-error-{i}", label=False,
                                    meta={"label_reason": f"tools said {wrong}, the region is {region.attributes[attr]}"}),
                            bad))
    return out


def _read_labels(path: Path, stats: ReadStats) -> list[Triple]:
    from vpd.distill.lskd_run import _parse_label

    out = []
    for rec in iter_jsonl(path, stats):
        try:
            t = from_record(rec)
            out.append(replace(t, label=_parse_label(rec.get("label")), source=t.source or "human",
                               index=t.index or f"h{len(out)}"))
        except (KeyError, TypeError, ValueError) as exc:
            stats.add(str(path), exc)
    return out


def compare_critics(run: str | Path, *, labels: str | Path | None = None, student: str | Path | None = None,
                    out: str | Path | None = None, test_frac: float = 0.3, seed: int = 0, threshold: float = 0.8,
                    augment: bool = True, embedder: Any = None) -> dict[str, Any]:
    """Train both critics on one split of ``run``'s labelled triples, evaluate on the same held-out
    triples; save the image-aware critic (``out``, default ``RUN/image_critic``) and write the
    table into ``RUN/report.json`` (section ``critic_compare``). Returns that section."""
    from vpd.distill.lskd_run import read_lskd, read_verbalisations

    run = Path(run)
    embedder = embedder or MiniLMEmbedder()
    verbs = read_verbalisations(run / "verbalisations.jsonl")
    stats = ReadStats()
    real = [t for t in read_lskd(run / "lskd_all.jsonl", stats) if t.label is not None]
    if labels is not None:
        real += [t for t in _read_labels(Path(labels), stats) if t.label is not None]
    real = [t for t in real if t.image in verbs]
    pairs = tool_error_triples(real, verbs, seed=seed) if augment else []
    triples = real + [t for t, _ in pairs]
    per: list[Verbalisation | None] = [verbs.get(t.image) for t in real] + [v for _, v in pairs]
    tr, te = split_by_image(triples, test_frac, seed)
    y = np.asarray([bool(t.label) for t in triples])
    if not te or len(set(y[te].tolist())) < 2 or len(set(y[tr].tolist())) < 2:
        raise ValueError(f"{run}: too few labelled images for a split by image with both classes on each side "
                         f"({len(triples)} triples); make the LSKD run with more images")
    x_text = text_features(triples, per, embedder)
    text_critic, _, _ = train_critic(triples, verbs, embedder=embedder, test_frac=test_frac, seed=seed,
                                     threshold=threshold, features=x_text)
    image_critic = train_image_critic(triples, verbs, embedder=embedder, student=student, train_idx=tr,
                                      threshold=threshold, per_triple_verbs=per)
    s_text = text_critic.score_features(x_text[te])
    s_image = image_critic.score_features(image_critic.features([triples[i] for i in te], [per[i] for i in te]))
    n_real = len(real)
    sets = {"held-out triples": [j for j, i in enumerate(te) if i < n_real],
            "held-out + simulated tool errors": list(range(len(te))),
            "simulated tool errors only": [j for j, i in enumerate(te) if i >= n_real]}
    rows = []
    for name, sel in sets.items():
        if not sel:
            continue
        for critic, scores in (("text-only", s_text), ("image-aware", s_image)):
            m = evaluate_scores(scores[sel], y[te][sel].tolist(), threshold)
            rows.append({"set": name, "critic": critic, **m.to_dict()})
    folder = image_critic.save(Path(out) if out else run / "image_critic")
    section = {"threshold": threshold, "test_frac": test_frac, "seed": seed, "labels": str(labels) if labels else "scene",
               "student": str(student) if student else None, "n_train": len(tr), "n_test": len(te),
               "n_real": n_real, "n_tool_errors": len(pairs), "image_critic": str(folder), "rows": rows,
               "bad_lines": stats.bad_lines}
    merge_report(run, "critic_compare", section)
    return section


def format_table(section: dict[str, Any]) -> str:
    """The comparison as a Markdown table (P/R/F1 at the threshold; accuracy of kept vs all triples)."""
    lines = [f"| held-out set | critic | n | P | R | F1 | kept | accuracy of kept | of all |",
             "|---|---|---|---|---|---|---|---|---|"]
    for r in section["rows"]:
        lines.append(f"| {r['set']} | {r['critic']} | {r['n']} | {r['precision']:.3f} | {r['recall']:.3f} | "
                     f"{r['f1']:.3f} | {r['kept']} | {r['kept_accuracy']:.3f} | {r['all_accuracy']:.3f} |")
    return "\n".join(lines)


def summary_line(section: dict[str, Any]) -> str:
    """The line printed under the table: threshold, split sizes, where the image-aware critic went."""
    return (f"threshold {section['threshold']}; {section['n_train']} training / {section['n_test']} held-out triples "
            f"(split by image); image-aware critic saved to {section['image_critic']}")


def rejection_rate(scores: Sequence[float], threshold: float) -> float:
    """Share of ``scores`` below ``threshold`` (triples a critic rejects)."""
    s = np.asarray(scores, dtype=float)
    return float(np.mean(s < threshold)) if len(s) else 0.0


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m vpd.distill.critic_compare RUN [--labels H.jsonl] [--student CKPT] [--out DIR]``."""
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("run", type=Path, help="LSKD run folder (verbalisations.jsonl, lskd_all.jsonl)")
    ap.add_argument("--labels", type=Path, help="human-labelled JSONL (LSKD records with label accept/reject)")
    ap.add_argument("--student", type=Path, help="student checkpoint: add its vision-encoder crop embeddings")
    ap.add_argument("--out", type=Path, help="image-aware critic folder (default RUN/image_critic)")
    ap.add_argument("--threshold", type=float, default=0.8)
    ap.add_argument("--test-frac", type=float, default=0.3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--no-augment", action="store_true", help="no simulated tool errors")
    a = ap.parse_args(argv)
    section = compare_critics(a.run, labels=a.labels, student=a.student, out=a.out, test_frac=a.test_frac,
                              seed=a.seed, threshold=a.threshold, augment=not a.no_augment)
    print(format_table(section))
    print(summary_line(section))


if __name__ == "__main__":
    main()
