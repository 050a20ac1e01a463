"""MMBench: the official TSV, CircularEval, rule-based choice extraction, per-category accuracy.

Follows OpenCompass VLMEvalKit (``vlmeval/utils/matching_util.py`` ``can_infer_option`` /
``can_infer_text`` / ``can_infer``, and ``vlmeval/dataset/utils/multiple_choice.py``
``extract_answer_from_item`` / ``prefetch_circular_group`` / ``eval_circular_group`` /
``report_acc``), the scorer behind the published MMBench numbers:

* **Choice extraction** (:func:`can_infer`): a refusal phrase -> ``Z``; otherwise replace
  ``.()[],:;!*#{}`` by spaces, split on whitespace, and if exactly one option letter appears as a
  token, that letter (so "A cat" reads as ``A``, as upstream with ``verbose`` off); with no letter
  but a lone ``Z`` token, ``Z``. Failing that, the option *text*: lower-cased, the one option whose
  text is a substring of the answer (none if the answer is longer than twice the options' total
  length, or if several match).
* **LLM fallback** (optional, a :mod:`vpd.programs.samplers` sampler): VLMEvalKit's matching prompt,
  up to 3 tries, each parsed with ``can_infer``; if all fail, a random choice among the options and
  ``Z`` (seeded by the question index here, so reruns agree). Without a sampler an unparsed answer
  is ``Z`` (upstream's ``exact_matching`` policy), i.e. wrong.
* **CircularEval**: a question with n options is asked n times, rotation ``k`` shifting the options
  left by ``k`` places (option at letter j is the original option ``(j + k) mod n``); the question
  scores 1 only if **every** rotation is answered correctly. Rule-based answers are checked first,
  a wrong one ends the group (upstream's prefetch), then the LLM resolves the rest.
* **Slices**: accuracy overall, per ``category`` and per ``l2-category`` (upstream ``report_acc``).
  ``vanilla_accuracy`` (rotation 0 only) is reported beside the circular number.

TSV columns: ``index, question, hint, A, B, C, D, (E), answer, category, l2-category, image``
(``image`` base64, or the index of another row holding it, as in VLMEvalKit's circular TSVs). Rows
with ``index >= 1e6`` are pre-rotated copies of row ``index % 1e6`` (VLMEvalKit's layout) and are
used as that question's rotations ``index // 1e6``. Predictions: ``index``, ``prediction`` and
``rotation`` (default: ``index // 1e6``).
"""

from __future__ import annotations

import base64
import binascii
import copy
import csv
import io
import random
import sys
from pathlib import Path
from typing import Any, Hashable

from vpd.benchmarks.registry import (
    BENCHMARKS, Benchmark, DataFormatError, Item, Prediction, Results, mean, slice_accuracy,
)
from vpd.types import JSON

SCORER_VERSION = "mmbench-1.0 (VLMEvalKit can_infer + CircularEval)"
ROTATION_STRIDE = 1_000_000
OPTION_LETTERS = ("A", "B", "C", "D", "E", "F", "G", "H", "I")
REQUIRED_COLUMNS = ("index", "question", "A", "B")
REFUSALS = (
    "Sorry, I can't help with images of people yet.",
    "I can't process this file.",
    "I'm sorry, but without the image provided",
    "Cannot determine the answer",
)


# --------------------------------------------------------------------------------------------
# VLMEvalKit's rule-based matching
# --------------------------------------------------------------------------------------------
def can_infer_option(answer: str, choices: dict[str, str]) -> str | bool:
    """The single option letter named in ``answer``, ``"Z"`` for a refusal, else False."""
    if "Failed to obtain answer via API" in answer:
        return False
    for err in REFUSALS:
        if err in answer:
            return "Z"
    answer_mod = answer
    for c in ".()[],:;!*#{}":
        answer_mod = answer_mod.replace(c, " ")
    splits = [x.strip() for x in answer_mod.split()]
    count = sum(1 for c in choices if c in splits)
    if count == 1:
        for ch in choices:
            if ch in splits:
                return ch
    elif count == 0 and sum(1 for c in ("Z", "") if c in splits) == 1:
        return "Z"
    return False


def can_infer_text(answer: str, choices: dict[str, str]) -> str | bool:
    """The single option whose (lower-cased) text occurs in ``answer``, else False."""
    answer = answer.lower()
    if len(answer) > 2 * sum(len(str(v)) for v in choices.values()):
        return False
    cands = [k for k, v in choices.items() if str(v).lower() in answer]
    return cands[0] if len(cands) == 1 else False


def can_infer(answer: Any, choices: dict[str, str]) -> str | bool:
    answer = str(answer)
    copt = can_infer_option(answer, choices)
    return copt if copt else can_infer_text(answer, choices)


def build_option_str(choices: dict[str, str]) -> str:
    s = "There are several options: \n"
    for c, content in choices.items():
        s += f"{c}. {content}\n"
    return s


def build_matching_prompt(question: str, options: str, prediction: str) -> str:
    """VLMEvalKit's answer-matching prompt (``build_prompt``), verbatim in meaning."""
    tmpl = (
        "You are an AI assistant who will help me to match "
        "an answer with several options of a single-choice question. "
        "You are provided with a question, several options, and an answer, "
        "and you need to find which option is most similar to the answer. "
        "If the meaning of all options are significantly different from the answer, output Z. "
        "Your should output a single uppercase character in A, B, C, D (if they are valid options), and Z. \n"
        "Example 1: \n"
        "Question: What is the main object in image?\nOptions: A. teddy bear B. rabbit C. cat D. dog\n"
        "Answer: a cute teddy bear\nYour output: A\n"
        "Example 2: \n"
        "Question: What is the main object in image?\nOptions: A. teddy bear B. rabbit C. cat D. dog\n"
        "Answer: Spider\nYour output: Z\n"
        "Example 3: \n"
        "Question: {}?\nOptions: {}\nAnswer: {}\nYour output: "
    )
    return tmpl.format(question, options, prediction)


def rotate(options: tuple[str, ...], answer: str | None, k: int) -> tuple[tuple[str, ...], str | None]:
    """Options shifted left by ``k`` places and the answer letter that follows its option."""
    n = len(options)
    new = tuple(options[(j + k) % n] for j in range(n))
    if answer is None:
        return new, None
    a = OPTION_LETTERS.index(answer)
    return new, OPTION_LETTERS[(a - k) % n]


# --------------------------------------------------------------------------------------------
# loading
# --------------------------------------------------------------------------------------------
def _read_tsv(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    csv.field_size_limit(sys.maxsize)
    with path.open(encoding="utf-8", newline="") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        if reader.fieldnames is None:
            raise DataFormatError(f"{path}: empty TSV (no header)")
        cols = [c.strip() for c in reader.fieldnames]
        rows = []
        for row in reader:
            rows.append({(k or "").strip(): (v if v is not None else "") for k, v in row.items()})
    return cols, rows


def _is_nan(v: str | None) -> bool:
    return v is None or v.strip() == "" or v.strip().lower() == "nan"


@BENCHMARKS.register("mmbench")
class MMBench(Benchmark):
    """MMBench (dev/test TSV) with CircularEval; see the module docstring for the exact rules."""

    name = "mmbench"
    id_field = "index"
    scorer_version = SCORER_VERSION
    checker = "choice"  # vpd.checkers name used when verifying programs on this benchmark
    slice_kinds = ("category", "l2-category")
    reference = "open-compass/VLMEvalKit matching_util.can_infer + multiple_choice.eval_circular_group"

    def __init__(self, *, circular: bool = True, sampler: Any = None, seed: int = 0) -> None:
        self.circular = circular
        self.sampler = sampler
        self.seed = seed
        self._images: dict[str, str] = {}

    # -- loading ---------------------------------------------------------------------------
    def load(self, path: str | Path) -> list[Item]:
        path = Path(path)
        if path.is_dir():
            tsvs = sorted(path.glob("*.tsv"))
            if len(tsvs) != 1:
                raise DataFormatError(f"{path}: expected one .tsv file, found {len(tsvs)}")
            path = tsvs[0]
        if not path.is_file():
            raise DataFormatError(f"no MMBench TSV at {path}")
        cols, rows = _read_tsv(path)
        missing = [c for c in REQUIRED_COLUMNS if c not in cols]
        if missing:
            raise DataFormatError(f"{path}: missing column(s) {', '.join(missing)} (have: {', '.join(cols)})")
        has_answer = "answer" in cols
        letters = [c for c in OPTION_LETTERS if c in cols]
        base: dict[int, dict[str, Any]] = {}
        copies: dict[int, list[tuple[int, dict[str, str], int]]] = {}
        self._images = {}
        for rowno, row in enumerate(rows, 2):  # line 1 is the header
            try:
                index = int(float(row["index"]))
            except ValueError:
                raise DataFormatError(f"{path}: row {rowno}: index {row['index']!r} is not an integer") from None
            if "image" in row:
                self._images[str(index)] = row["image"]
            if index >= ROTATION_STRIDE:
                copies.setdefault(index % ROTATION_STRIDE, []).append((index // ROTATION_STRIDE, row, rowno))
                continue
            if index in base:
                raise DataFormatError(f"{path}: row {rowno}: duplicate index {index}")
            base[index] = {"row": row, "rowno": rowno}
        items = []
        for index, entry in base.items():
            row, rowno = entry["row"], entry["rowno"]
            options = tuple(row[c] for c in letters if not _is_nan(row.get(c)))
            if len(options) < 2:
                raise DataFormatError(f"{path}: row {rowno} (index {index}): fewer than two options")
            answer = row.get("answer", "").strip() if has_answer else None
            if answer is not None and (answer not in OPTION_LETTERS[:len(options)]):
                raise DataFormatError(
                    f"{path}: row {rowno} (index {index}): answer {answer!r} is not one of "
                    f"{', '.join(OPTION_LETTERS[:len(options)])}")
            variants = self._variants(index, options, answer, copies.get(index, []), letters, path)
            hint = "" if _is_nan(row.get("hint")) else row["hint"]
            slices = {k: row[k] for k in self.slice_kinds if k in row and not _is_nan(row[k])}
            raw = {k: v for k, v in row.items() if k != "image"}
            raw["__id_value__"] = index
            raw["__variants__"] = variants
            raw["__rowno__"] = rowno
            raw["__hint__"] = hint
            items.append(Item(id=str(index), question=row["question"], gold=answer, image=None,
                              image_b64=str(index) if "image" in row else None, choices=options,
                              slices=slices, raw=raw))
        for g in copies:
            if g not in base:
                raise DataFormatError(f"{path}: rotated rows for index {g} but no row with index {g}")
        return items

    def _variants(self, index: int, options: tuple[str, ...], answer: str | None,
                  copies: list[tuple[int, dict[str, str], int]], letters: list[str], path: Path
                  ) -> list[dict[str, JSON]]:
        """Rotation k -> {options, answer}: from the TSV's copies if it has them, else generated."""
        if copies:
            out = [{"rotation": 0, "options": list(options), "answer": answer}]
            for k, row, rowno in sorted(copies, key=lambda t: t[0]):
                opts = [row[c] for c in letters if not _is_nan(row.get(c))]
                ans = row.get("answer", "").strip() or None if answer is not None else None
                if len(opts) != len(options):
                    raise DataFormatError(f"{path}: row {rowno}: rotated copy of {index} has "
                                          f"{len(opts)} options, the original {len(options)}")
                out.append({"rotation": k, "options": opts, "answer": ans})
            return out
        n = len(options) if self.circular else 1
        out = []
        for k in range(n):
            opts, ans = rotate(options, answer, k)
            out.append({"rotation": k, "options": list(opts), "answer": ans})
        return out

    # -- predictions -----------------------------------------------------------------------
    def prediction_key(self, record: dict[str, JSON]) -> Hashable:
        index = int(float(record["index"]))
        rot = record.get("rotation")
        if rot is None:
            rot = index // ROTATION_STRIDE
        return (str(index % ROTATION_STRIDE), int(rot))

    def item_keys(self, item: Item) -> list[Hashable]:
        return [(item.id, int(v["rotation"])) for v in item.raw["__variants__"]]

    def key_record(self, item: Item, key: Hashable) -> dict[str, JSON]:
        return {"index": int(item.id), "rotation": int(key[1])}  # type: ignore[index]

    def _variant(self, item: Item, key: Hashable) -> dict[str, JSON]:
        for v in item.raw["__variants__"]:
            if int(v["rotation"]) == key[1]:  # type: ignore[index]
                return v
        raise KeyError(key)

    def prompt(self, item: Item, key: Hashable) -> str:
        hint = item.raw.get("__hint__") or ""
        return f"Hint: {hint}\n{item.question}" if hint else item.question

    def choices_for(self, item: Item, key: Hashable) -> tuple[str, ...] | None:
        return tuple(self._variant(item, key)["options"])

    def image_path(self, item: Item, image_dir: Path) -> str:
        """Decode the row's base64 image into ``image_dir/<index>.png`` (errors name the row)."""
        from PIL import Image, UnidentifiedImageError

        out = Path(image_dir) / f"mmbench-{item.id}.png"
        if out.is_file():
            return str(out)
        rowno = item.raw.get("__rowno__")
        payload = self._images.get(item.id)
        if payload is None:
            raise DataFormatError(f"MMBench row {rowno} (index {item.id}): no 'image' column/value")
        seen = set()
        while payload.strip().isdigit() and len(payload.strip()) <= 12 and payload.strip() not in seen:
            seen.add(payload.strip())  # a reference to another row's image
            payload = self._images.get(payload.strip(), payload)
        try:
            data = base64.b64decode(payload, validate=True)
            img = Image.open(io.BytesIO(data))
            img.load()
        except (binascii.Error, ValueError, UnidentifiedImageError, OSError) as exc:
            raise DataFormatError(f"MMBench row {rowno} (index {item.id}): undecodable base64 image: {exc}") from exc
        out.parent.mkdir(parents=True, exist_ok=True)
        img.convert("RGB").save(out)
        return str(out)

    # -- scoring ---------------------------------------------------------------------------
    def extract(self, text: str, item: Item | None = None, options: list[str] | None = None) -> str | bool:
        """Rule-based letter (or ``Z``) for ``text`` against the item's (rotation 0) options; False if none."""
        opts = options if options is not None else list(item.choices or ()) if item else []
        choices = {OPTION_LETTERS[j]: o for j, o in enumerate(opts)}
        return can_infer(text, copy.copy(choices))

    def _llm_extract(self, item: Item, options: list[str], prediction: str) -> tuple[str, str]:
        """VLMEvalKit's GPT matching with the configured sampler; returns (letter, log)."""
        choices = {OPTION_LETTERS[j]: o for j, o in enumerate(options)}
        if self.sampler is None:
            return "Z", "unparsed; no LLM matcher (exact_matching policy)"
        prompt = build_matching_prompt(item.question, build_option_str(choices), prediction)
        for attempt in range(3):
            outs = self.sampler.generate([prompt], n=1, temperature=0.0 if attempt == 0 else 0.7,
                                         max_tokens=8, stop=["\n"], seed=self.seed + attempt)
            comp = outs[0][0] if outs and outs[0] else None
            if comp is None or getattr(comp, "error", None):
                continue
            ret = can_infer(comp.text, dict(choices))
            if ret:
                return str(ret), f"llm: {comp.text.strip()!r}"
        rng = random.Random(f"{self.seed}-{item.id}")
        return rng.choice(list(choices) + ["Z"]), "llm failed 3 times; random option (VLMEvalKit rule)"

    def score(self, items: list[Item], predictions: dict[Hashable, Prediction], *,
              strict: bool = False) -> Results:
        if any(it.gold is None for it in items):
            raise DataFormatError("this MMBench TSV has no 'answer' column (a test split): it cannot be "
                                  "scored locally; submit the predictions TSV instead")
        matched, missing, extra = self.match(items, predictions, strict=strict)
        per_item = []
        llm_calls = 0
        for it in items:
            rots = []
            hit = 1
            pending = []
            for v in it.raw["__variants__"]:
                key = (it.id, int(v["rotation"]))
                pred = matched.get(key)
                text = pred.prediction.strip() if pred else None
                opt = can_infer(text, {OPTION_LETTERS[j]: o for j, o in enumerate(v["options"])}) \
                    if text is not None else False
                rec = {"rotation": v["rotation"], "answer": v["answer"], "prediction": text,
                       "extracted": opt or None, "method": "rule" if opt else None}
                rots.append(rec)
                if text is None:
                    hit = 0
                    rec["method"] = "missing"
                elif opt and opt != v["answer"]:
                    hit = 0  # upstream prefetch: a wrong rule-based answer ends the group
                elif not opt:
                    pending.append((rec, v))
            if hit:
                for rec, v in pending:
                    llm_calls += self.sampler is not None
                    letter, log = self._llm_extract(it, list(v["options"]), rec["prediction"])
                    rec.update(extracted=letter, method=log)
                    if letter != v["answer"]:
                        hit = 0
                        break
            first = rots[0]
            vanilla = int(first["extracted"] is not None and first["extracted"] == first["answer"])
            per_item.append({"id": it.id, "gold": it.gold, "correct": hit, "vanilla_correct": vanilla,
                             "rotations": rots, "slices": dict(it.slices)})
        metrics = {"accuracy": mean(r["correct"] for r in per_item),
                   "vanilla_accuracy": mean(r["vanilla_correct"] for r in per_item)}
        slices = slice_accuracy(per_item, self.slice_kinds)
        notes = []
        n_rot = [len(it.raw["__variants__"]) for it in items]
        if self.circular and predictions and all(k[1] == 0 for k in predictions):  # type: ignore[index]
            notes.append("predictions hold rotation 0 only: CircularEval counts the other rotations as "
                         "missing (wrong); see vanilla_accuracy")
        return Results(benchmark=self.name, scorer_version=self.scorer_version, metrics=metrics,
                       slices=slices,
                       counts={"n": len(items), "rotations": sum(n_rot), "missing": len(missing),
                               "extra": len(extra), "llm_matches": int(llm_calls)},
                       missing=tuple(missing), extra=tuple(extra), per_item=tuple(per_item),
                       notes=tuple(notes))

    # -- submission ------------------------------------------------------------------------
    def write_submission(self, items: list[Item], predictions: dict[Hashable, Prediction], out: Path) -> Path:
        """The submission TSV: one row per rotation (``index = index + k * 1e6``), the TSV's columns
        without ``image``, the rotated options, ``prediction`` (raw text) and the extracted letter."""
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        max_opts = max((len(it.choices or ()) for it in items), default=4)
        letters = list(OPTION_LETTERS[:max(4, max_opts)])
        cols = ["index", "question", "hint", *letters, "answer", "category", "l2-category", "prediction", "extracted"]
        with out.open("w", encoding="utf-8", newline="") as fh:
            w = csv.writer(fh, delimiter="\t", quoting=csv.QUOTE_ALL)
            w.writerow(cols)
            for it in items:
                for v in it.raw["__variants__"]:
                    k = int(v["rotation"])
                    pred = predictions.get((it.id, k))
                    opts = list(v["options"]) + [""] * (len(letters) - len(v["options"]))
                    text = pred.prediction if pred else ""
                    ext = can_infer(text, {OPTION_LETTERS[j]: o for j, o in enumerate(v["options"])}) if pred else False
                    w.writerow([int(it.id) + k * ROTATION_STRIDE, it.question, it.raw.get("__hint__", ""), *opts,
                                v["answer"] or "", it.slices.get("category", ""), it.slices.get("l2-category", ""),
                                text, ext or ""])
        return out


def encode_image_b64(image: Any, fmt: str = "PNG") -> str:
    """Base64 of a PIL image (how MMBench TSVs store images); used to build fixtures and exports."""
    buf = io.BytesIO()
    image.save(buf, format=fmt)
    return base64.b64encode(buf.getvalue()).decode("ascii")


__all__ = ["MMBench", "can_infer", "can_infer_option", "can_infer_text", "rotate", "SCORER_VERSION",
           "encode_image_b64"]
