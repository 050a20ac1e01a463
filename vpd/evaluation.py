"""Run an evaluation and write its results: ``results.json`` + ``results.md`` (+ ``per_item.jsonl``).

Three ways to get predictions, one scorer (the benchmark's, :mod:`vpd.benchmarks.registry`):

* :func:`evaluate_predictions` — a predictions JSONL file (never opens an image);
* :func:`evaluate_model` — a trained student checkpoint (``vpd.distill`` predictor);
* :func:`evaluate_programs` — programs as the solver: an LLM writes programs over tools for each
  question and the sandbox runs them (``vpd.synth`` without labels).

``results.json`` holds the metrics, slices, counts, the scorer version, the benchmark's reference,
the data files' hash (sha256 of their bytes, first 16 hex digits), what produced the predictions
(a model's id covers its config and the full content of its weights: :func:`model_identity`; run
ids) and the vpd version. Everything written is strict JSON: a NaN/±Infinity score is dropped from
its prediction with an ``error``, a non-finite metric becomes ``null`` with a note. :func:`compare_results` puts two result files side by side.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Hashable

from vpd.benchmarks.registry import Benchmark, Prediction, Results, get_benchmark
from vpd.types import JSON


@dataclass(frozen=True, kw_only=True)
class EvalRecord:
    """What is written to ``results.json``: scores plus provenance."""

    results: Results
    data: str
    data_hash: str
    source: dict[str, JSON] = field(default_factory=dict)
    created: str = ""

    def to_dict(self) -> dict[str, JSON]:
        import vpd

        out = self.results.to_dict()
        out.update({"data": self.data, "data_hash": self.data_hash, "source": self.source,
                    "created": self.created, "vpd_version": getattr(vpd, "__version__", "0"),
                    "reference": _reference(self.results.benchmark)})
        return out


def _reference(name: str) -> str:
    try:
        return get_benchmark(name).reference
    except Exception:  # noqa: BLE001 - provenance only
        return ""


def data_hash(bench: Benchmark, data: str | Path) -> str:
    """sha256 over the data files' names and bytes (first 16 hex digits)."""
    h = hashlib.sha256()
    for f in bench.data_files(data):
        h.update(Path(f).name.encode())
        with open(f, "rb") as fh:
            for chunk in iter(lambda: fh.read(1 << 20), b""):
                h.update(chunk)
    return h.hexdigest()[:16]


def evaluate_predictions(benchmark: str | Benchmark, data: str | Path, predictions: str | Path, *,
                         strict: bool = False, source: dict[str, JSON] | None = None) -> EvalRecord:
    """Score a predictions file against ``data`` with the benchmark's official rules."""
    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    res = bench.score_file(data, predictions, strict=strict)
    src = {"kind": "predictions", "predictions": str(predictions), **(source or {})}
    return EvalRecord(results=res, data=str(data), data_hash=data_hash(bench, data), source=src,
                      created=time.strftime("%Y-%m-%dT%H:%M:%S"))


def write_predictions(bench: Benchmark, examples: list, answers: dict[str, dict[str, JSON]], path: Path) -> Path:
    """Write a predictions JSONL (benchmark id fields + ``prediction`` [+ ``score``]) for ``examples``.

    ``answers`` maps an example id to ``{"prediction": str, "score"?: float, ...}``; examples
    without an answer are left out (the scorer counts them as missing, i.e. wrong).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for ex in examples:
            ans = answers.get(ex.id)
            if ans is None:
                continue
            rec = dict(ex.metadata["key"])
            rec["prediction"] = "" if ans.get("prediction") is None else str(ans["prediction"])
            for k in ("score", "rationale", "status", "error"):
                if ans.get(k) is not None:
                    rec[k] = ans[k]
            score = rec.get("score")
            if isinstance(score, float) and not math.isfinite(score):
                del rec["score"]  # JSON has no NaN/Infinity: the item is scored without it, and says why
                rec["error"] = f"{rec['error']}; " if rec.get("error") else ""
                rec["error"] += f"non-finite score {score!r} rejected"
            fh.write(json.dumps(rec, ensure_ascii=False, allow_nan=False, default=str) + "\n")
    return path


def benchmark_examples(bench: Benchmark, data: str | Path, work: Path) -> tuple[list, list[str]]:
    """The benchmark's questions as :class:`~vpd.types.Example` s (images decoded into ``work``).

    Returns (examples, errors): an item whose image cannot be produced is left out and its error
    kept (it will be scored as missing, i.e. wrong).
    """
    from vpd.benchmarks.registry import DataFormatError

    items = bench.load(data)
    examples, errors = [], []
    for it in items:
        try:
            examples.extend(bench.to_examples([it], work / "images"))
        except DataFormatError as exc:
            errors.append(str(exc))
    return examples, errors


def evaluate_model(benchmark: str | Benchmark, data: str | Path, model: str | Path, out: str | Path, *,
                   batch_size: int = 8, max_new_tokens: int = 16, strict: bool = False,
                   mode: str = "direct", allow_overlap: bool = False) -> EvalRecord:
    """Run a student checkpoint on the benchmark and score its answers.

    ``mode``: ``direct`` (label prompt) or ``cot`` (rationale prompt, the answer parsed from its last
    sentence; see :func:`vpd.solvers.predict_with_model`); recorded in the result's ``source``.

    Before anything runs, the evaluated images are compared by content with the student's training
    images (:func:`vpd.distill.image_overlap.check_training_overlap`): an overlap raises
    :class:`~vpd.distill.image_overlap.TrainingOverlapError`, or with ``allow_overlap`` becomes a
    note and ``counts["training_overlap"]``."""
    from vpd.distill.image_overlap import check_training_overlap
    from vpd.solvers import predict_with_model

    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    out = Path(out)
    examples, errors = benchmark_examples(bench, data, out)
    overlap = check_training_overlap(model, [ex.image for ex in examples], allow=allow_overlap)
    answers = predict_with_model(model, examples, work=out, batch_size=batch_size, max_new_tokens=max_new_tokens,
                                 mode=mode)
    from vpd.benchmarks.hateful_memes import HatefulMemes

    if isinstance(bench, HatefulMemes):  # AUROC needs a score: the student's P("yes")
        from vpd.solvers import yes_probabilities

        for ex_id, prob in yes_probabilities(model, examples, batch_size=batch_size).items():
            answers.setdefault(ex_id, {"id": ex_id, "prediction": ""})["score"] = prob
    preds_path = write_predictions(bench, examples, answers, out / "predictions.jsonl")
    ident = model_identity(model)
    rec = evaluate_predictions(bench, data, preds_path, strict=strict,
                               source={"kind": "model", "model": str(model), "mode": mode, **ident,
                                       "model_id": ident.get("model_id") or str(model)})
    return _with_overlap(_with_notes(rec, errors), overlap)


def _with_overlap(rec: EvalRecord, overlap: Any) -> EvalRecord:
    """``rec`` with the training-overlap check's outcome in its counts (and a note when it matters)."""
    import dataclasses

    counts = {**rec.results.counts, **({"training_overlap": overlap.overlapping} if overlap.checked else {})}
    notes = tuple(rec.results.notes) + ((f"WARNING: {overlap.message()}",) if overlap.overlapping or not overlap.checked
                                        else ())
    return dataclasses.replace(rec, results=dataclasses.replace(rec.results, notes=notes, counts=counts))


def evaluate_programs(benchmark: str | Benchmark, data: str | Path, llm: str, tools: str, out: str | Path, *,
                      k: int = 1, strict: bool = False, timeout_s: float = 5.0, sampler: Any = None) -> EvalRecord:
    """Programs as the solver: sample programs (no labels), run them, score their outputs."""
    from vpd.solvers import predict_with_programs

    bench = get_benchmark(benchmark) if isinstance(benchmark, str) else benchmark
    out = Path(out)
    examples, errors = benchmark_examples(bench, data, out)
    answers = predict_with_programs(examples, llm=llm, tools=tools, run_dir=out / "programs", k=k,
                                    timeout_s=timeout_s, sampler=sampler)
    preds_path = write_predictions(bench, examples, answers, out / "predictions.jsonl")
    rec = evaluate_predictions(bench, data, preds_path, strict=strict,
                               source={"kind": "programs", "llm": llm, "tools": tools, "k": k,
                                       "run": str(out / "programs")})
    return _with_notes(rec, errors)


def _with_notes(rec: EvalRecord, errors: list[str]) -> EvalRecord:
    import dataclasses

    if not errors:
        return rec
    notes = tuple(rec.results.notes) + tuple(f"input error (scored as missing): {e}" for e in errors[:20])
    counts = {**rec.results.counts, "input_errors": len(errors)}
    return dataclasses.replace(rec, results=dataclasses.replace(rec.results, notes=notes, counts=counts))


def _model_id(model: str | Path) -> str:
    """A short id of a checkpoint (see :func:`model_identity`), or the path when there is none."""
    return model_identity(model).get("model_id") or str(model)


def identity_files(model: str | Path) -> list[Path]:
    """The files that make a checkpoint what it is: a single file itself; in a folder every file
    outside ``state/`` (config.json, tokenizer …) and, of an orbax ``state/<step>/`` history, only
    the latest step (the one loaded for prediction). Hidden files are left out."""
    from vpd.tools.backends._weights import weight_files

    root = Path(model)
    if root.is_file():
        return [root]
    if not root.is_dir():
        return []
    files = [f for f in weight_files(root) if f.relative_to(root).parts[0] != "state"]
    state = root / "state"
    steps = [d for d in state.iterdir() if d.is_dir() and d.name.isdigit()] if state.is_dir() else []
    if steps:
        files += weight_files(max(steps, key=lambda d: int(d.name)))
    return sorted(files)


def model_identity(model: str | Path) -> dict[str, JSON]:
    """``{"model_id", "config_hash", "weights_hash", "model_step"}`` of a checkpoint (12 hex digits
    each; {} when ``model`` is no file or folder). ``model_id`` covers the config **and** the full
    content of every :func:`identity_files` file, so two students with one config but different
    weights get different ids. File digests are memoised by (path, size, mtime) in process and on
    disk (:mod:`vpd.tools.backends._weights`): a checkpoint is read once, not at every eval."""
    from vpd.tools.backends._weights import file_digest

    root = Path(model)
    files = identity_files(root)
    if not files:
        return {}
    base = root if root.is_dir() else root.parent
    lines = {f.relative_to(base).as_posix(): file_digest(f) for f in files}
    cfg = lines.get("config.json")

    def digest(items: dict[str, str]) -> str:
        h = hashlib.sha256()
        for name, d in sorted(items.items()):
            h.update(name.encode() + b"\0" + d.encode() + b"\n")
        return h.hexdigest()[:12]

    step_dirs = {Path(n).parts[1] for n in lines if n.startswith("state/") and len(Path(n).parts) > 2}
    return {"model_id": digest(lines), "config_hash": cfg[:12] if cfg else None,
            "weights_hash": digest({n: d for n, d in lines.items() if n != "config.json"}),
            "model_step": int(next(iter(step_dirs))) if len(step_dirs) == 1 else None}


# --------------------------------------------------------------------------------------------
# writing and reading results
# --------------------------------------------------------------------------------------------
def write_results(rec: EvalRecord, out: str | Path) -> Path:
    """Write ``results.json``, ``results.md`` and ``per_item.jsonl`` into ``out``; returns the json path."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    d = _finite(rec.to_dict(), "", notes)
    if notes:
        d["notes"] = list(d.get("notes") or []) + notes[:20]
    (out / "results.json").write_text(json.dumps(d, indent=2, ensure_ascii=False, default=str, allow_nan=False)
                                      + "\n", encoding="utf-8")
    (out / "results.md").write_text(results_markdown(d), encoding="utf-8")
    with (out / "per_item.jsonl").open("w", encoding="utf-8") as fh:
        for row in rec.results.per_item:
            row = _finite(row, "per_item", [])
            fh.write(json.dumps(row, ensure_ascii=False, default=str, allow_nan=False) + "\n")
    return out / "results.json"


def _finite(value: Any, where: str, notes: list[str]) -> Any:
    """``value`` with every NaN/±Infinity float replaced by None (each noted in ``notes``)."""
    if isinstance(value, float) and not math.isfinite(value):
        notes.append(f"{where or 'value'} was {value!r} (not a finite number): written as null")
        return None
    if isinstance(value, dict):
        return {k: _finite(v, f"{where}.{k}" if where else str(k), notes) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v, f"{where}[{i}]", notes) for i, v in enumerate(value)]
    return value


def load_results(path: str | Path) -> dict[str, JSON]:
    path = Path(path)
    if path.is_dir():
        path = path / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"no results.json at {path}")
    return json.loads(path.read_text(encoding="utf-8"))


def _fmt(v: Any) -> str:
    if v is None:
        return "–"
    if isinstance(v, bool):
        return str(v)
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        return f"{v:.4f}"
    return str(v)


def results_markdown(d: dict[str, JSON]) -> str:
    """A Markdown report: overall metrics, then one table per slice kind."""
    lines = [f"# {d['benchmark']} results", "",
             f"- scorer: `{d['scorer_version']}`", f"- data: `{d.get('data', '')}` (sha256 {d.get('data_hash', '')})",
             f"- source: `{json.dumps(d.get('source', {}), sort_keys=True)}`",
             "- counts: " + ", ".join(f"{k} {v}" for k, v in d.get("counts", {}).items()), ""]
    metrics = d["metrics"]
    lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in metrics.items()]
    for kind, table in (d.get("slices") or {}).items():
        cols: list[str] = []
        for row in table.values():
            cols += [c for c in row if c not in cols]
        lines += ["", f"## by {kind}", "", f"| {kind} | " + " | ".join(cols) + " |",
                  "|---|" + "---|" * len(cols)]
        for name, row in table.items():
            lines.append(f"| {name} | " + " | ".join(_fmt(row.get(c)) for c in cols) + " |")
    for note in d.get("notes") or []:
        lines += ["", f"> {note}"]
    return "\n".join(lines) + "\n"


def compare_results(a: str | Path | dict, b: str | Path | dict) -> tuple[list[str], list[list[str]]]:
    """Rows ``[name, A, B, B - A]`` for every metric and slice metric of two result files."""
    da = a if isinstance(a, dict) else load_results(a)
    db = b if isinstance(b, dict) else load_results(b)
    rows: list[list[str]] = []

    def add(name: str, va: Any, vb: Any) -> None:
        diff = f"{vb - va:+.4f}" if isinstance(va, (int, float)) and isinstance(vb, (int, float)) \
            and not isinstance(va, bool) else ""
        rows.append([name, _fmt(va), _fmt(vb), diff])

    rows.append(["benchmark", str(da.get("benchmark")), str(db.get("benchmark")), ""])
    rows.append(["scorer", str(da.get("scorer_version")), str(db.get("scorer_version")), ""])
    rows.append(["data_hash", str(da.get("data_hash")), str(db.get("data_hash")), ""])
    for k in list(dict.fromkeys([*da.get("metrics", {}), *db.get("metrics", {})])):
        add(k, da.get("metrics", {}).get(k), db.get("metrics", {}).get(k))
    sa, sb = da.get("slices") or {}, db.get("slices") or {}
    for kind in list(dict.fromkeys([*sa, *sb])):
        ta, tb = sa.get(kind, {}), sb.get(kind, {})
        for name in list(dict.fromkeys([*ta, *tb])):
            ra, rb = ta.get(name, {}), tb.get(name, {})
            for m in list(dict.fromkeys([*ra, *rb])):
                add(f"{kind}={name} {m}", ra.get(m), rb.get(m))
    notes = []
    if da.get("scorer_version") != db.get("scorer_version"):
        notes.append("scorer versions differ: numbers may not be comparable")
    if da.get("data_hash") != db.get("data_hash"):
        notes.append("data hashes differ: the two runs scored different data")
    return notes, rows


def predictions_by_key(bench: Benchmark, path: str | Path) -> dict[Hashable, Prediction]:
    preds, _ = bench.read_predictions(path)
    return preds
