"""TallyQA (counting): the official JSON, simple/complex accuracy and RMSE.

Data: a JSON list (the released ``train.json`` / ``test.json``) of ``{answer, data_source, image,
image_id, issimple, question, question_id}`` — or JSON lines of the same records. ``answer`` is an
integer count. Metrics follow the TallyQA paper (Acharya et al., AAAI 2019), whose models output
a count: exact-match ``accuracy`` and ``rmse``, overall and for the ``simple`` and ``complex``
subsets (``issimple``), plus per ``data_source``. TallyQA ships no scoring script, so the headline
reads a prediction as a count only when the whole (stripped) text is a non-negative integer
(:func:`strict_count`, ``"3"``); anything else is unparsed, scored wrong and left out of RMSE.

Lenient variants, suffixed: ``accuracy_extracted`` / ``rmse_extracted`` read the first count in
free text (:func:`extract_count`: digits ``"3"``, ``"3.0"`` or words ``"three"``,
``"twenty-one"``, ``"one hundred"``; ``0`` when the text says ``no``/``none``/``nothing``).
"""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Hashable

from vpd.benchmarks.registry import (
    BENCHMARKS, Benchmark, DataFormatError, Item, Prediction, Results, mean,
)

SCORER_VERSION = "tallyqa-2.0 (exact integer match of the whole answer; extracted counts suffixed)"

_UNITS = {w: i for i, w in enumerate(
    "zero one two three four five six seven eight nine ten eleven twelve thirteen fourteen fifteen "
    "sixteen seventeen eighteen nineteen".split())}
_TENS = {w: 10 * i for i, w in enumerate("_ _ twenty thirty forty fifty sixty seventy eighty ninety".split()) if w != "_"}
_ZERO_WORDS = {"no", "none", "nothing", "nobody", "neither"}
_TOKEN = re.compile(r"\d+(?:[.,]\d+)?|[a-z]+")


def strict_count(text: str) -> int | None:
    """The count if the whole stripped ``text`` is a non-negative integer numeral, else None."""
    t = str(text).strip()
    return int(t) if t.isascii() and t.isdigit() else None


def extract_count(text: str) -> int | None:
    """The first count in ``text`` (digits or English number words), 0 for a bare negation, else None."""
    tokens = _TOKEN.findall(str(text).lower().replace("-", " "))
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        if tok[0].isdigit():
            try:
                value = float(tok.replace(",", ""))
            except ValueError:
                return None
            return int(round(value))
        if tok in _UNITS or tok in _TENS:
            value = _UNITS.get(tok, _TENS.get(tok, 0))
            j = i + 1
            if tok in _TENS and j < len(tokens) and tokens[j] in _UNITS and _UNITS[tokens[j]] < 10:
                value += _UNITS[tokens[j]]
                j += 1
            if j < len(tokens) and tokens[j] == "hundred":
                value *= 100
                j += 1
                if j < len(tokens) and tokens[j] == "and":
                    j += 1
                if j < len(tokens) and (tokens[j] in _UNITS or tokens[j] in _TENS):
                    value += _UNITS.get(tokens[j], _TENS.get(tokens[j], 0))
            return value
        i += 1
    if any(t in _ZERO_WORDS for t in tokens):
        return 0
    return None


def _load_records(path: Path) -> list[dict]:
    text = path.read_text(encoding="utf-8")
    try:
        data = json.loads(text)
        if isinstance(data, dict):
            data = data.get("questions") or data.get("data") or list(data.values())
        if not isinstance(data, list):
            raise DataFormatError(f"{path}: expected a JSON list of questions")
        return data
    except json.JSONDecodeError:
        out = []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError as exc:
                    raise DataFormatError(f"{path}: line {lineno}: not JSON ({exc})") from None
        return out


@BENCHMARKS.register("tallyqa")
class TallyQA(Benchmark):
    """TallyQA counting questions; accuracy and RMSE for simple and complex questions."""

    name = "tallyqa"
    id_field = "question_id"
    scorer_version = SCORER_VERSION
    checker = "count"  # vpd.checkers name used when verifying programs on this benchmark
    slice_kinds = ("subset", "data_source")
    reference = "TallyQA (Acharya et al. 2019): exact-match accuracy and RMSE on simple/complex"

    def __init__(self, *, image_root: str | Path | None = None) -> None:
        self.image_root = Path(image_root) if image_root else None

    def load(self, path: str | Path) -> list[Item]:
        path = Path(path)
        if path.is_dir():
            cands = [path / n for n in ("test.json", "test.jsonl")] + sorted(path.glob("*.json"))
            path = next((p for p in cands if p.is_file()), path / "test.json")
        if not path.is_file():
            raise DataFormatError(f"no TallyQA JSON at {path}")
        items = []
        seen: set[str] = set()
        for i, rec in enumerate(_load_records(path)):
            where = f"{path}: record {i}"
            if not isinstance(rec, dict):
                raise DataFormatError(f"{where}: not an object")
            for key in ("question_id", "question", "answer"):
                if key not in rec:
                    raise DataFormatError(f"{where}: missing field {key!r}")
            try:
                answer = int(rec["answer"])
            except (TypeError, ValueError):
                raise DataFormatError(f"{where} (question_id {rec['question_id']}): answer "
                                      f"{rec['answer']!r} is not an integer") from None
            qid = str(rec["question_id"])
            if qid in seen:
                raise DataFormatError(f"{where}: duplicate question_id {qid}")
            seen.add(qid)
            simple = rec.get("issimple")
            slices = {}
            if simple is not None:
                slices["subset"] = "simple" if bool(simple) else "complex"
            if rec.get("data_source"):
                slices["data_source"] = str(rec["data_source"])
            image = rec.get("image")
            if image is not None:
                image = str((self.image_root or path.parent) / image)
            items.append(Item(id=qid, question=str(rec["question"]), gold=answer, image=image,
                              slices=slices, raw={**rec, "__id_value__": rec["question_id"]}))
        return items

    def extract(self, text: str, item: Item | None = None) -> int | None:
        return extract_count(text)

    def score(self, items: list[Item], predictions: dict[Hashable, Prediction], *,
              strict: bool = False) -> Results:
        matched, missing, extra = self.match(items, predictions, strict=strict)
        per_item = []
        for it in items:
            pred = matched.get(it.id)
            value = strict_count(pred.prediction) if pred is not None else None
            loose = extract_count(pred.prediction) if pred is not None else None
            per_item.append({"id": it.id, "gold": it.gold, "parsed": value, "extracted": loose,
                             "correct": int(value is not None and value == it.gold),
                             "correct_extracted": int(loose is not None and loose == it.gold),
                             "sq_err": None if value is None else float((value - it.gold) ** 2),
                             "sq_err_extracted": None if loose is None else float((loose - it.gold) ** 2),
                             "slices": dict(it.slices)})
        metrics = _count_metrics(per_item)
        slices: dict[str, dict[str, dict[str, float]]] = {}
        for kind in self.slice_kinds:
            groups: dict[str, list[dict]] = {}
            for row in per_item:
                if kind in row["slices"]:
                    groups.setdefault(row["slices"][kind], []).append(row)
            if groups:
                slices[kind] = {k: _count_metrics(v) for k, v in sorted(groups.items())}
        return Results(benchmark=self.name, scorer_version=self.scorer_version, metrics=metrics,
                       slices=slices,
                       counts={"n": len(items), "missing": len(missing), "extra": len(extra),
                               "unparsed": sum(1 for r in per_item if r["parsed"] is None),
                               "unparsed_extracted": sum(1 for r in per_item if r["extracted"] is None)},
                       missing=tuple(missing), extra=tuple(extra), per_item=tuple(per_item))


def _count_metrics(rows: list[dict]) -> dict[str, float | None]:
    errs = [r["sq_err"] for r in rows if r["sq_err"] is not None]
    loose = [r["sq_err_extracted"] for r in rows if r["sq_err_extracted"] is not None]
    return {"accuracy": mean(r["correct"] for r in rows), "rmse": math.sqrt(mean(errs)) if errs else None,
            "accuracy_extracted": mean(r["correct_extracted"] for r in rows),
            "rmse_extracted": math.sqrt(mean(loose)) if loose else None, "n": len(rows)}
