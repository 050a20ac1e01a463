"""Instruction mixtures (``vpd mix``): VPD's multitask format plus LSKD triples, as prefix/suffix JSONL.

Format (``docs/contracts.md`` "Mixtures"): ``DS/train.jsonl`` and ``DS/val.jsonl``, one line per
training example ``{"id", "image" (absolute path), "prefix", "suffix", "task", "source", "weight",
"example_id"}``; ``DS/manifest.json`` with counts and sources.

* ``label`` on every labelled example of a run: prefix ``"{question}\\n{instruction}"``, suffix the
  answer; the instruction is per benchmark (:mod:`vpd.distill.label_prompts`: "Answer with a single
  word or phrase." by default and for every ``shapes`` question; multiple-choice questions of other
  benchmarks ask for the option's letter);
* ``rationale`` on examples with a verified program (kept lines of ``rationales.jsonl``): prefix
  ``"{question}\\nExplain the rationale to answer the question."``, suffix
  ``"{rationale} So the answer is {answer}."`` (the rationale's own final "Thus, the answer is …"
  sentence is dropped so the answer is stated once);
* ``lskd`` on kept triples of ``lskd.jsonl``: the image with its regions drawn (LSKD style, under
  ``DS/regions/``), prefix ``"{question}\\nAnswer the question and explain the rationale."``,
  suffix ``"{rationale} So the answer is {answer}."`` (``lskd_format="vpd"``, the default) or LSKD's own
  ``"Answer: {answer} Rationale: {rationale}"`` (``lskd_format="lskd"``, :data:`LSKD_TARGETS`); the row also carries ``regions`` (the clean
  image and the references) so that training can re-shuffle region ids per sample
  (:mod:`vpd.distill.region_shuffle`).

Multiple-choice questions list their options after the question as ``"A. red\\nB. blue…"``.
Weights: per task and per source (run folder name), multiplied. Duplicates (same image, task,
prefix and suffix) are dropped and counted. The train/val split is by image (a seeded hash of the
original image path), so no image is in both.

``split`` (``vpd mix --split``, default ``train`` on the CLI) keeps only examples, rationales and
LSKD triples of that dataset split (:mod:`vpd.splits`; rows that declare none are kept); the
manifest records it, the rows of other splits left out (``other_split``) and the sha256 of every
image the mixture holds (``image_sha256``, per mixture split; :mod:`vpd.distill.image_overlap`),
which ``vpd train`` carries into the checkpoint and ``vpd eval`` checks against.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from vpd.distill.answer_sentence import ANSWER_LEAD
from vpd.distill.label_prompts import LABEL_PROMPTS_VERSION, label_instruction
from vpd.distill.lskd import tokens_to_text
from vpd.distill.run_io import ReadStats, iter_jsonl, read_run_examples, read_verified, resolve_image, write_jsonl
from vpd.splits import in_split, normalize_split
from vpd.types import Example

MIXTURE_VERSION = "2"  # 2: per-benchmark label instructions (vpd.distill.label_prompts)
LABEL_INSTRUCTION = "Answer with a single word or phrase."  # the default label instruction
RATIONALE_INSTRUCTION = "Explain the rationale to answer the question."
LSKD_INSTRUCTION = "Answer the question and explain the rationale."
TASKS = ("label", "rationale", "lskd")
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"


@dataclass(frozen=True, kw_only=True)
class MixItem:
    """One training example (prefix is the prompt, suffix the target; loss only on the suffix)."""

    id: str
    image: str
    prefix: str
    suffix: str
    task: str
    source: str
    weight: float
    example_id: str
    split_key: str = ""  # the original image, for the split (not written)
    #: LSKD rows: ``{"image": clean image, "references": [...]}`` so training can redraw shuffled ids
    regions: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d.pop("split_key")
        if d["regions"] is None:
            d.pop("regions")
        return d


def question_text(example: Example) -> str:
    """The question, with multiple-choice options as ``"A. red\\nB. blue"`` lines after it."""
    q = " ".join(example.question.split())
    if example.choices:
        q += "\n" + "\n".join(f"{LETTERS[i]}. {c}" for i, c in enumerate(example.choices[:26]))
    return q


def label_prefix(example: Example) -> str:
    return f"{question_text(example)}\n{label_instruction(example)}"


def rationale_prefix(example: Example) -> str:
    return f"{question_text(example)}\n{RATIONALE_INSTRUCTION}"


_FINAL = re.compile(r"\s*(?:Thus|So|Therefore|Hence)?,?\s*the answer is\s+[^.]*(?:\.\d+[^.]*)*\.?\s*$", re.IGNORECASE)


def rationale_suffix(rationale: str, answer: str) -> str:
    """``"{rationale} So the answer is {answer}."`` with the rationale's own answer sentence removed.

    The closing sentence is what training never cuts (:mod:`vpd.distill.target_shorten`) and what
    chain-of-thought inference parses (:func:`vpd.distill.answer_sentence.parse_final_answer`)."""
    body = " ".join(str(rationale).split())
    stripped = _FINAL.sub("", body).strip()
    body = stripped if stripped else body
    if body and body[-1] not in ".!?":
        body += "."
    ans = " ".join(str(answer).split()).rstrip(".")
    return f"{body} {ANSWER_LEAD} {ans}.".strip()


def lskd_target(answer: str, rationale: str) -> str:
    """LSKD's target format: ``"Answer: {answer} Rationale: {rationale}"`` (answer first, one line)."""
    ans = " ".join(str(answer).split())
    rat = " ".join(str(rationale).split())
    if ans and ans[-1] not in ".!?":
        ans += "."
    return f"Answer: {ans} Rationale: {rat}"


#: LSKD row targets by name (``vpd mix --lskd-format``): ``(answer, rationale) -> suffix``.
LSKD_TARGETS = {"vpd": lambda a, r: rationale_suffix(r, a), "lskd": lskd_target}


def split_of(key: str, val_frac: float, seed: int = 0) -> str:
    """``"val"`` for a seeded-hash fraction ``val_frac`` of keys (images), else ``"train"``."""
    h = int(hashlib.sha1(f"{seed}:{key}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
    return "val" if h < val_frac else "train"


def parse_weights(spec: str | Mapping[str, float] | None) -> dict[str, float]:
    """``"label=1,rationale=2,myrun=0.5"`` -> dict. Keys are task names or source names."""
    if spec is None:
        return {}
    if isinstance(spec, Mapping):
        return {str(k): float(v) for k, v in spec.items()}
    out: dict[str, float] = {}
    for part in [p.strip() for p in str(spec).split(",") if p.strip()]:
        if "=" not in part:
            raise ValueError(f"bad weight {part!r}: expected NAME=NUMBER (NAME a task {TASKS} or a source)")
        k, v = part.split("=", 1)
        try:
            w = float(v)
        except ValueError:
            raise ValueError(f"bad weight {part!r}: {v!r} is not a number") from None
        if w < 0:
            raise ValueError(f"bad weight {part!r}: must be >= 0")
        out[k.strip()] = w
    return out


def _weight(weights: Mapping[str, float], task: str, source: str) -> float:
    return float(weights.get(task, 1.0)) * float(weights.get(source, 1.0))


def _answer_of(example: Example, fallback: Any) -> str | None:
    if example.answer is not None:
        return str(example.answer)
    if fallback is None:
        return None
    from vpd.distill.answer_text import answer_text

    return answer_text(fallback)


def items_from_run(run: Path, weights: Mapping[str, float], stats: ReadStats, *, regions_dir: Path,
                   shuffle: bool = False, seed: int = 0, notes: list[str] | None = None,
                   lskd_format: str = "vpd", split: str | None = None,
                   skipped: dict[str, int] | None = None) -> list[MixItem]:
    """Every mixture item a run folder yields (synth run and/or LSKD run); rows of a dataset split
    other than ``split`` are left out and counted per task in ``skipped``."""
    if lskd_format not in LSKD_TARGETS:
        raise ValueError(f"unknown LSKD target format {lskd_format!r}; choose one of {', '.join(LSKD_TARGETS)}")
    source = run.name
    items: list[MixItem] = []
    notes = notes if notes is not None else []
    skipped = skipped if skipped is not None else {}

    def keep(task: str, row: Any) -> bool:
        if in_split(row, split):
            return True
        skipped[task] = skipped.get(task, 0) + 1
        return False

    # label task: every labelled example
    for ex in read_run_examples(run, stats):
        if ex.answer is None or not keep("label", ex):
            continue
        items.append(MixItem(id=f"{source}/label/{ex.id}", image=ex.image, prefix=label_prefix(ex), suffix=str(ex.answer),
                             task="label", source=source, weight=_weight(weights, "label", source),
                             example_id=ex.id, split_key=ex.image))
    # rationale task: kept rationales (template rationales made on the fly when the run has none)
    rat_file = run / "rationales.jsonl"
    rows: list[tuple[Example, str, Any]] = []
    if rat_file.is_file():
        for rec in iter_jsonl(rat_file, stats):
            if rec.get("kept") is False:
                continue
            try:
                exd = dict(rec["example"])
                exd["image"] = resolve_image(str(exd.get("image", "")), run)
                rows.append((Example.from_dict(exd), str(rec["rationale"]), rec.get("answer")))
            except (KeyError, TypeError, ValueError) as exc:
                stats.add(str(rat_file), exc)
    elif (run / "verified.jsonl").is_file():
        from vpd.distill.rationale import TraceItem, template_rationale
        from vpd.distill.rationale_check import check_rationale

        made = 0
        for v in read_verified(run, stats):
            item = TraceItem(example=v.example, program=v.candidate.program or "", trace=v.candidate.trace,
                             answer=v.candidate.answer)
            text = template_rationale(item)
            if check_rationale(text, v.example, v.candidate.trace, program_answer=v.candidate.answer).ok:
                rows.append((v.example, text, v.candidate.answer))
                made += 1
        notes.append(f"{source}: no rationales.jsonl; made {made} template rationales (run `vpd rationalize`)")
    for ex, rationale, program_answer in rows:
        ans = _answer_of(ex, program_answer)
        if ans is None or not keep("rationale", ex):
            continue
        items.append(MixItem(id=f"{source}/rationale/{ex.id}", image=ex.image, prefix=rationale_prefix(ex),
                             suffix=rationale_suffix(rationale, ans), task="rationale", source=source,
                             weight=_weight(weights, "rationale", source), example_id=ex.id, split_key=ex.image))
    # lskd task
    lskd_file = run / "lskd.jsonl"
    if lskd_file.is_file():
        from vpd.distill.regions_draw import save_region_image, shuffle_regions

        for i, rec in enumerate(iter_jsonl(lskd_file, stats)):
            try:
                if rec.get("kept") is False or not keep("lskd", rec):
                    continue
                if shuffle:
                    rec = shuffle_regions(rec, seed)
                original = resolve_image(str(rec["image"]), run)
                rec = {**rec, "image": original}
                q, a, r = (tokens_to_text(rec[k]) if isinstance(rec.get(k), list) else str(rec.get(k, ""))
                           for k in ("question", "answer", "rationale"))
                if not (q and a and r):
                    raise ValueError("empty question, answer or rationale")
                drawn = save_region_image(rec, regions_dir)
                ex_id = str(rec.get("index") or i)
                items.append(MixItem(id=f"{source}/lskd/{ex_id}", image=drawn, prefix=f"{q}\n{LSKD_INSTRUCTION}",
                                     suffix=LSKD_TARGETS[lskd_format](a, r), task="lskd", source=source,
                                     weight=_weight(weights, "lskd", source), example_id=ex_id, split_key=original,
                                     regions={"image": original, "references": list(rec.get("references", []))}))
            except Exception as exc:  # one bad triple (missing image …) is counted, the mixture goes on
                stats.add(f"{lskd_file} record {i}", exc)
    return items


@dataclass(kw_only=True)
class MixReport:
    out: str
    version: str = MIXTURE_VERSION
    label_prompts: str = LABEL_PROMPTS_VERSION
    sources: list[str] = field(default_factory=list)
    weights: dict[str, float] = field(default_factory=dict)
    counts: dict[str, dict[str, int]] = field(default_factory=dict)  # split -> task -> n
    by_source: dict[str, dict[str, int]] = field(default_factory=dict)
    duplicates: int = 0
    zero_weight: int = 0
    bad_lines: int = 0
    errors: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    val_frac: float = 0.1
    seed: int = 0
    lskd_format: str = "vpd"
    images: dict[str, int] = field(default_factory=dict)
    split: str | None = None  # the dataset split used (None: every split)
    other_split: dict[str, int] = field(default_factory=dict)  # task -> rows of other splits left out
    image_sha256: dict[str, list[str]] = field(default_factory=dict)  # mixture split -> image hashes
    unhashed_images: list[str] = field(default_factory=list)  # images that could not be read to hash
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def dedupe(items: Iterable[MixItem]) -> tuple[list[MixItem], int]:
    seen: set[str] = set()
    out, dup = [], 0
    for it in items:
        key = hashlib.sha1(json.dumps([it.split_key or it.image, it.task, it.prefix, it.suffix]).encode()).hexdigest()
        if key in seen:
            dup += 1
            continue
        seen.add(key)
        out.append(it)
    return out, dup


def build_mixture(runs: Sequence[str | Path], out: str | Path, *, weights: str | Mapping[str, float] | None = None,
                  val_frac: float = 0.1, seed: int = 0, shuffle_regions: bool = False,
                  lskd_format: str = "vpd", split: str | None = None) -> MixReport:
    """Build ``out/train.jsonl``, ``out/val.jsonl`` and ``out/manifest.json`` from run folders
    (``lskd_format``: a name in :data:`LSKD_TARGETS`), keeping only dataset split ``split`` (None or
    ``"all"``: every split)."""
    if lskd_format not in LSKD_TARGETS:
        raise ValueError(f"unknown LSKD target format {lskd_format!r}; choose one of {', '.join(LSKD_TARGETS)}")
    t0 = time.perf_counter()
    if not 0.0 <= val_frac < 1.0:
        raise ValueError(f"val_frac must be in [0, 1), got {val_frac}")
    out = Path(out)
    w = parse_weights(weights)
    split = normalize_split(split)
    report = MixReport(out=str(out.resolve()), weights=w, val_frac=val_frac, seed=seed, lskd_format=lskd_format,
                       split=split)
    stats = ReadStats()
    items: list[MixItem] = []
    for run in runs:
        run = Path(run)
        if not run.is_dir():
            raise FileNotFoundError(f"run folder not found: {run}")
        report.sources.append(run.name)
        items.extend(items_from_run(run, w, stats, regions_dir=out / "regions", shuffle=shuffle_regions, seed=seed,
                                    notes=report.notes, lskd_format=lskd_format, split=split,
                                    skipped=report.other_split))
    unknown = [k for k in w if k not in TASKS and k not in report.sources]
    if unknown:
        raise ValueError(f"weights name unknown tasks/sources {unknown} (tasks: {', '.join(TASKS)}; "
                         f"sources: {', '.join(report.sources)})")
    items, report.duplicates = dedupe(items)
    report.zero_weight = sum(1 for it in items if it.weight == 0)
    items = [it for it in items if it.weight > 0]
    splits: dict[str, list[dict[str, Any]]] = {"train": [], "val": []}
    imgs: dict[str, set[str]] = {"train": set(), "val": set()}
    for it in items:
        s = split_of(it.split_key or it.image, val_frac, seed)
        splits[s].append(it.to_dict())
        imgs[s].add(it.split_key or it.image)
        report.counts.setdefault(s, {}).setdefault(it.task, 0)
        report.counts[s][it.task] += 1
        report.by_source.setdefault(it.source, {}).setdefault(it.task, 0)
        report.by_source[it.source][it.task] += 1
    for s, recs in splits.items():
        write_jsonl(out / f"{s}.jsonl", recs)
    report.images = {s: len(v) for s, v in imgs.items()}
    from vpd.distill.image_overlap import mixture_image_record

    report.image_sha256, report.unhashed_images = mixture_image_record(imgs)
    report.bad_lines, report.errors = stats.bad_lines, stats.errors
    report.seconds = round(time.perf_counter() - t0, 3)
    (out / "manifest.json").write_text(json.dumps(report.to_dict(), indent=2, ensure_ascii=False))
    return report


def read_mixture(ds: str | Path, split: str = "train") -> list[dict[str, Any]]:
    """The records of one split of a mixture folder."""
    path = Path(ds) / f"{split}.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no {split} split at {path} (make one with `vpd mix`)")
    return list(iter_jsonl(path))
