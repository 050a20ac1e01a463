"""The benchmark registry and the :class:`Benchmark` base every benchmark module implements.

A benchmark module has four parts: a loader for the official file format (``load(path) ->
list[Item]``), an answer extractor (``extract(text, item)``), a versioned scorer (``score(items,
predictions) -> Results``, ``SCORER_VERSION``) and the per-slice breakdown its papers report.

Predictions (``vpd eval --predictions F``) are JSONL, one line per question: the benchmark's own id
field (:attr:`Benchmark.id_field`: ``index`` for MMBench, ``question_id`` for TallyQA, POPE,
A-OKVQA, VQAv2 and OK-VQA, ``questionId`` for GQA, ``id`` for Hateful Memes and shapes), ``prediction`` (raw model text) and, where a metric
needs it, ``score`` (a float). Some benchmarks key a prediction by more than the id (MMBench adds
``rotation``, POPE adds ``split`` when several split files are scored at once); see
:meth:`Benchmark.prediction_key`.

Bad input, everywhere: an unreadable prediction line is recorded (``bad_lines``) and skipped; a
question with no prediction is *scored as wrong* (as the official A-OKVQA/VLMEvalKit scorers do)
and listed in ``missing``; a prediction for an unknown id is ignored and listed in ``extra``.
``strict=True`` turns missing/extra ids into a :class:`PredictionError` naming them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import importlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Hashable, Iterable

from vpd.registry import Registry
from vpd.types import JSON, Example


class DataFormatError(ValueError):
    """A benchmark data file is malformed; the message names the file and the row."""


class PredictionError(ValueError):
    """A predictions file is unusable (or, with ``strict``, misses/adds ids); the message says which."""


@dataclass(frozen=True, kw_only=True)
class Item:
    """One benchmark question as the scorer sees it.

    ``id`` is the benchmark's own id (as a string). ``gold`` is the reference answer in the
    benchmark's own form (a letter, an int, a list of direct answers …). ``image`` is a path, or
    None when the image lives inside the data file (MMBench base64) — see ``image_b64``.
    ``slices`` maps a slice kind (``category``, ``issimple`` …) to this item's value.
    ``raw`` is the original record (minus any image payload).
    """

    id: str
    question: str
    gold: JSON
    image: str | None = None
    image_b64: str | None = None
    choices: tuple[str, ...] | None = None
    slices: dict[str, str] = field(default_factory=dict)
    raw: dict[str, JSON] = field(default_factory=dict)


@dataclass(frozen=True, kw_only=True)
class Prediction:
    """One line of a predictions file: raw ``prediction`` text, optional ``score`` and extra keys."""

    id: str
    prediction: str
    score: float | None = None
    extra: dict[str, JSON] = field(default_factory=dict)
    line: int = 0


@dataclass(frozen=True, kw_only=True)
class BadPredictionLine:
    """A predictions line that could not be used (recorded, never fatal)."""

    line: int
    error: str


@dataclass(frozen=True, kw_only=True)
class Results:
    """Scores of one evaluation.

    ``metrics``: overall numbers (accuracies are fractions in [0, 1]). ``slices``: slice kind ->
    slice value -> metric name -> number (also holds ``n``). ``counts``: ``n`` scored, ``missing``
    (no prediction, scored wrong), ``extra`` (ignored), ``bad_lines``. ``per_item``: one dict per
    scored question (id, gold, extracted answer, correct …) for inspection and comparison.
    """

    benchmark: str
    scorer_version: str
    metrics: dict[str, float]
    slices: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    counts: dict[str, int] = field(default_factory=dict)
    missing: tuple[str, ...] = ()
    extra: tuple[str, ...] = ()
    bad_lines: tuple[BadPredictionLine, ...] = ()
    per_item: tuple[dict[str, JSON], ...] = ()
    notes: tuple[str, ...] = ()

    def to_dict(self, *, with_items: bool = False, max_ids: int = 50) -> dict[str, JSON]:
        out: dict[str, JSON] = {
            "benchmark": self.benchmark, "scorer_version": self.scorer_version,
            "metrics": self.metrics, "slices": self.slices, "counts": self.counts,
            "missing_ids": list(self.missing[:max_ids]), "extra_ids": list(self.extra[:max_ids]),
            "bad_lines": [{"line": b.line, "error": b.error} for b in self.bad_lines[:max_ids]],
            "notes": list(self.notes),
        }
        if with_items:
            out["per_item"] = list(self.per_item)
        return out


class Benchmark(ABC):
    """Base class: subclasses set the class attributes and implement ``load``/``extract``/``score``."""

    name: ClassVar[str] = ""
    id_field: ClassVar[str] = "id"
    scorer_version: ClassVar[str] = "0"
    #: Slice kinds reported (keys of :attr:`Item.slices`).
    slice_kinds: ClassVar[tuple[str, ...]] = ()
    #: What the scorer follows (cited in results).
    reference: ClassVar[str] = ""

    # -- loading ---------------------------------------------------------------------------
    @abstractmethod
    def load(self, path: str | Path) -> list[Item]:
        """The benchmark's items from its official file or folder at ``path``."""

    def data_files(self, path: str | Path) -> list[Path]:
        """The files whose bytes define the data (hashed into results)."""
        path = Path(path)
        return sorted(p for p in path.iterdir() if p.is_file() and p.suffix in {".json", ".jsonl", ".tsv"}) \
            if path.is_dir() else [path]

    # -- predictions -----------------------------------------------------------------------
    def prediction_key(self, record: dict[str, JSON]) -> Hashable:
        """The key a predictions line scores under (default: its id field, as a string)."""
        return str(record[self.id_field])

    def item_keys(self, item: Item) -> list[Hashable]:
        """The prediction keys an item needs (default: its id)."""
        return [item.id]

    def read_predictions(self, path: str | Path) -> tuple[dict[Hashable, Prediction], list[BadPredictionLine]]:
        """Read a predictions JSONL file; malformed or duplicate lines are returned as bad lines."""
        path = Path(path)
        if not path.is_file():
            raise PredictionError(f"no predictions file at {path}")
        preds: dict[Hashable, Prediction] = {}
        bad: list[BadPredictionLine] = []
        with path.open(encoding="utf-8", errors="replace") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                    if not isinstance(rec, dict):
                        raise ValueError("expected a JSON object")
                    pred = self.prediction_from_record(rec, lineno)
                    key = self.prediction_key(rec)
                except (ValueError, KeyError, TypeError) as exc:
                    msg = f"missing field {exc}" if isinstance(exc, KeyError) else str(exc)
                    bad.append(BadPredictionLine(line=lineno, error=msg))
                    continue
                if key in preds:
                    bad.append(BadPredictionLine(
                        line=lineno, error=f"duplicate prediction for {key!r} (first on line {preds[key].line}; kept the first)"))
                    continue
                preds[key] = pred
        return preds, bad

    def prediction_from_record(self, rec: dict[str, JSON], lineno: int) -> Prediction:
        if self.id_field not in rec:
            raise KeyError(self.id_field)
        text = rec.get("prediction")
        if text is None:
            text = rec.get("answer", rec.get("text"))
        if text is None and rec.get("score") is None and rec.get("proba") is None:
            raise ValueError("no 'prediction' (or 'score') field")
        score = rec.get("score", rec.get("proba"))
        if score is not None:
            score = float(score)
            if score != score:  # NaN
                raise ValueError("score is NaN")
        extra = {k: v for k, v in rec.items() if k not in {self.id_field, "prediction", "score"}}
        return Prediction(id=str(rec[self.id_field]), prediction="" if text is None else str(text),
                          score=score, extra=extra, line=lineno)

    def match(self, items: list[Item], preds: dict[Hashable, Prediction], *, strict: bool = False
              ) -> tuple[dict[Hashable, Prediction], list[str], list[str]]:
        """Predictions for the items' keys, the missing keys and the extra keys (as strings)."""
        wanted = [k for it in items for k in self.item_keys(it)]
        wanted_set = set(wanted)
        missing = [_key_str(k) for k in wanted if k not in preds]
        extra = [_key_str(k) for k in preds if k not in wanted_set]
        if strict and (missing or extra):
            raise PredictionError(
                f"{len(missing)} missing prediction(s) (first: {missing[:5]}) and {len(extra)} "
                f"unknown id(s) (first: {extra[:5]})")
        return {k: preds[k] for k in wanted if k in preds}, missing, extra

    # -- scoring ---------------------------------------------------------------------------
    @abstractmethod
    def extract(self, text: str, item: Item | None = None) -> JSON:
        """The answer in a model's free-text output, as the official scorer reads it."""

    @abstractmethod
    def score(self, items: list[Item], predictions: dict[Hashable, Prediction], *,
              strict: bool = False) -> Results:
        """The official metric of ``predictions`` (id -> prediction) over ``items``."""

    def score_file(self, data: str | Path, predictions: str | Path, *, strict: bool = False) -> Results:
        """Load ``data``, read ``predictions`` and score (never opens an image)."""
        items = self.load(data)
        preds, bad = self.read_predictions(predictions)
        res = self.score(items, preds, strict=strict)
        return _with_bad_lines(res, bad)

    # -- running a model or programs on the benchmark --------------------------------------
    def to_examples(self, items: list[Item], image_dir: Path) -> list[Example]:
        """Examples (question text as a model sees it) for running a solver; images written to ``image_dir``.

        Each Example's ``metadata["key"]`` is the prediction key as JSON (see :meth:`key_record`).
        """
        out = []
        for it in items:
            for key in self.item_keys(it):
                out.append(Example(id=_key_str(key), image=self.image_path(it, image_dir),
                                   question=self.prompt(it, key), answer=None,
                                   choices=self.choices_for(it, key), qtype=self.name,
                                   metadata={"key": self.key_record(it, key), "benchmark": self.name}))
        return out

    def prompt(self, item: Item, key: Hashable) -> str:
        """The question as a solver sees it (options are passed separately, see :meth:`choices_for`)."""
        return item.question

    def choices_for(self, item: Item, key: Hashable) -> tuple[str, ...] | None:
        """The option texts shown with the question for ``key`` (None if not multiple choice)."""
        return item.choices

    def key_record(self, item: Item, key: Hashable) -> dict[str, JSON]:
        """The id fields of a predictions line for ``key``."""
        return {self.id_field: _id_value(item)}

    def image_path(self, item: Item, image_dir: Path) -> str:
        if item.image is None:
            raise DataFormatError(f"{self.name} item {item.id} has no image path")
        return item.image


def _id_value(item: Item) -> JSON:
    raw = item.raw.get("__id_value__")
    return raw if raw is not None else item.id


def _key_str(key: Hashable) -> str:
    if isinstance(key, tuple):
        return "/".join(str(k) for k in key)
    return str(key)


def _with_bad_lines(res: Results, bad: list[BadPredictionLine]) -> Results:
    import dataclasses

    counts = dict(res.counts)
    counts["bad_lines"] = len(bad)
    return dataclasses.replace(res, bad_lines=tuple(bad), counts=counts)


def mean(values: Iterable[float]) -> float:
    vals = list(values)
    return float(sum(vals) / len(vals)) if vals else 0.0


def slice_accuracy(per_item: list[dict[str, JSON]], kinds: Iterable[str], *, field_name: str = "correct"
                   ) -> dict[str, dict[str, dict[str, float]]]:
    """Mean of ``field_name`` per value of each slice kind (``per_item`` rows carry ``slices``)."""
    out: dict[str, dict[str, dict[str, float]]] = {}
    for kind in kinds:
        groups: dict[str, list[float]] = {}
        for row in per_item:
            value = (row.get("slices") or {}).get(kind)
            if value is None:
                continue
            groups.setdefault(str(value), []).append(float(row[field_name]))
        if groups:
            out[kind] = {v: {"accuracy": mean(g), "n": len(g)} for v, g in sorted(groups.items())}
    return out


#: Modules that register benchmarks (imported on the first lookup).
_MODULES = ("mmbench", "tallyqa", "pope", "aokvqa", "hateful_memes", "shapes_bench", "moderation", "vqav2",
            "okvqa", "gqa")
_imported = False


def _import_all() -> None:
    global _imported
    if _imported:
        return
    _imported = True
    for mod in _MODULES:
        importlib.import_module(f"vpd.benchmarks.{mod}")


class _LazyRegistry(Registry):
    """A :class:`Registry` that imports the benchmark modules on the first lookup, so that
    ``"pope" in BENCHMARKS`` works without importing them by hand (vpd.checkers relies on it)."""

    def get(self, name: str):  # type: ignore[override]
        _import_all()
        return super().get(name)

    def __contains__(self, name: object) -> bool:
        _import_all()
        return super().__contains__(name)

    def names(self) -> list[str]:
        _import_all()
        return super().names()


BENCHMARKS: Registry[type[Benchmark]] = _LazyRegistry("benchmark")


def get_benchmark(name: str) -> Benchmark:
    """An instance of the benchmark registered as ``name`` (unknown names say "did you mean")."""
    _import_all()
    return BENCHMARKS.get(name)()


def benchmark_names() -> list[str]:
    _import_all()
    return BENCHMARKS.names()
