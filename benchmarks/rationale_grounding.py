"""Is a student's chain of thought right about the image? Scores the ``Find PHRASE: LISTING.``
sentences of its rationales against the scene records of the ``shapes`` questions it answered.

    python -m vpd.benchmarks.rationale_grounding --test D --split val --limit 500 \\
        --run vpd=OUT/runs/b17000/vpd/s0 --out G
    python -m vpd.benchmarks.rationale_grounding --test D --split train \\
        --run teacher=RUN/rationales.jsonl --out G_teacher      # the training rationales themselves

The sentence form is the ``words`` rewriter's (:mod:`vpd.distill.rationale_words`), which is the
``find`` pretraining task's: ``"Find red object: a large red cube and a small red sphere."`` or
``"Find cube: none."``. A run is an ablation run folder (``predictions.jsonl`` with ``rationale`` and
``cot``) or a ``vpd rationalize`` output (``rationales.jsonl``; kept rows, the program's answer as
``cot``). Per run:

* **finds**: :func:`vpd.distill.caption_quality.score_finds` over every sentence whose phrase names
  only ``shapes`` sizes, colours, shapes and ``object`` (others are counted as ``unscored``), beside
  ``presence_prior``, the share a blind "always the majority presence" answer gets right;
* **chain-of-thought accuracy split by grounding**: questions whose every scored listing is exact,
  questions with at least one wrong listing, and questions with no scored sentence. A large gap
  says the answer follows the listings and the listings are what fail;
* **answer follows the listing**: on ``count_simple`` questions with exactly one scored find, the
  share whose chain-of-thought answer is the number of objects listed.

This is evaluation: it reads scene records, which no tool and no student ever sees. Writes
``G/grounding.{json,md}``.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from vpd.benchmarks.shapes import COLORS, SHAPES, SIZES
from vpd.distill.caption_quality import parse_listing, score_finds

_FIND = re.compile(r"Find ([^:.]+): ([^.]*)\.")
_ANY_OBJECT = {"object", "objects", "thing", "things", "shape", "shapes", "item", "items"}


def find_sentences(rationale: str) -> list[tuple[str, str]]:
    """The ``(phrase, listing)`` of every ``Find PHRASE: LISTING.`` sentence, in order."""
    return [(p.strip(), l.strip()) for p, l in _FIND.findall(rationale or "")]


def phrase_selector(phrase: str) -> Callable[[dict], bool] | None:
    """A predicate on scene objects for a phrase made of sizes, colours, shapes (singular or plural)
    and ``object``; None when a word is none of these (the phrase cannot be scored)."""
    color = size = shape = None
    for word in phrase.lower().split():
        if word in _ANY_OBJECT or word in ("the", "a", "an", "all"):
            continue
        if word in COLORS:
            color = word
        elif word in SIZES:
            size = word
        elif word in SHAPES or (word.endswith("s") and word[:-1] in SHAPES):
            shape = word if word in SHAPES else word[:-1]
        else:
            return None
    return lambda o: ((color is None or o["color"] == color) and (size is None or o["size"] == size)
                      and (shape is None or o["shape"] == shape))


@dataclass(frozen=True, kw_only=True)
class Grounding:
    """One run's grounding report (shares in [0, 1]; ``n_*`` are question counts)."""

    name: str
    questions: int
    with_find: int  # questions whose rationale has at least one Find sentence
    find_sentences: int
    unscored: int  # Find sentences whose phrase is not in the shapes vocabulary
    finds: dict[str, Any]  # score_finds over the scored sentences
    cot_accuracy: float
    n_grounded: int  # every scored listing exact
    cot_grounded: float
    n_misgrounded: int  # at least one scored listing wrong
    cot_misgrounded: float
    n_no_find: int
    cot_no_find: float
    count_one_find: int  # count_simple questions with exactly one scored find
    count_follows_listing: float  # ... whose cot answer is the number of objects listed


def _share(hits: int, n: int) -> float:
    return hits / n if n else float("nan")


def grounding(name: str, predictions: dict[str, dict], examples: Sequence, *, benchmark: str = "shapes") -> Grounding:
    """Score ``predictions`` (id -> record with ``rationale`` and ``cot``) on ``examples`` that carry
    scene records (``metadata["scene"]``); questions without a prediction are left out."""
    from vpd.checkers import checker_for

    outputs: list[str] = []
    selected: list[list[dict]] = []
    buckets = {"grounded": [0, 0], "misgrounded": [0, 0], "no_find": [0, 0]}
    questions = with_find = sentences = unscored = count_n = count_follow = right_all = 0
    for e in examples:
        rec = predictions.get(e.id)
        scene = e.metadata.get("scene")
        if rec is None or not scene:
            continue
        questions += 1
        answer = rec.get("cot")
        right = answer is not None and bool(checker_for(e, benchmark).check(str(answer), e).lenient)
        right_all += right
        finds = find_sentences(str(rec.get("rationale") or ""))
        with_find += bool(finds)
        sentences += len(finds)
        exact: list[bool] = []
        listed: list[int] = []
        for phrase, listing in finds:
            keep = phrase_selector(phrase)
            if keep is None:
                unscored += 1
                continue
            truth = [o for o in scene if keep(o)]
            outputs.append(listing)
            selected.append(truth)
            named = parse_listing(listing)
            exact.append(sorted(named) == sorted((o["size"], o["color"], o["shape"]) for o in truth))
            listed.append(len(named))
        bucket = "no_find" if not exact else "grounded" if all(exact) else "misgrounded"
        buckets[bucket][0] += right
        buckets[bucket][1] += 1
        if e.qtype == "count_simple" and len(listed) == 1:
            count_n += 1
            count_follow += str(answer).strip() == str(listed[0])
    return Grounding(name=name, questions=questions, with_find=with_find, find_sentences=sentences,
                     unscored=unscored, finds=score_finds(outputs, selected),
                     cot_accuracy=_share(right_all, questions),
                     n_grounded=buckets["grounded"][1], cot_grounded=_share(*buckets["grounded"]),
                     n_misgrounded=buckets["misgrounded"][1], cot_misgrounded=_share(*buckets["misgrounded"]),
                     n_no_find=buckets["no_find"][1], cot_no_find=_share(*buckets["no_find"]),
                     count_one_find=count_n, count_follows_listing=_share(count_follow, count_n))


def read_predictions(source: str | Path) -> dict[str, dict]:
    """id -> ``{"rationale", "cot"}`` from a run folder (``predictions.jsonl``) or a ``rationales.jsonl``
    (kept rows; the program's answer stands for ``cot``)."""
    path = Path(source)
    if path.is_dir():
        path = path / "predictions.jsonl"
    if not path.is_file():
        raise FileNotFoundError(f"no predictions.jsonl or rationales file at {source}")
    out: dict[str, dict] = {}
    with path.open(encoding="utf-8") as fh:
        for line in fh:
            if not line.strip():
                continue
            rec = json.loads(line)
            if "example" in rec:  # vpd rationalize output
                if rec.get("kept") is False:
                    continue
                out[str(rec["example"]["id"])] = {"rationale": rec.get("rationale"), "cot": rec.get("answer")}
            else:
                out[str(rec["id"])] = {"rationale": rec.get("rationale"), "cot": rec.get("cot")}
    return out


def _pct(x: float) -> str:
    return "—" if x != x else f"{100 * x:.1f}"


def markdown(rows: Sequence[Grounding], command: str) -> str:
    lines = [f"Command: `{command}`", "",
             "| run | questions | Find sentences (unscored) | presence right (blind prior) | listing exact | "
             "object recall / precision | CoT acc. | CoT acc. when every listing is exact (n) | "
             "… when one is wrong (n) | … with no scored find (n) | count answer = objects listed (n) |",
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for g in rows:
        f = g.finds
        lines.append(
            f"| {g.name} | {g.questions} | {g.find_sentences} ({g.unscored}) | {_pct(f['presence_acc'])} "
            f"({_pct(f['presence_prior'])}) | {_pct(f['exact'])} | {_pct(f['object_recall'])} / "
            f"{_pct(f['object_precision'])} | {_pct(g.cot_accuracy)} | {_pct(g.cot_grounded)} ({g.n_grounded}) | "
            f"{_pct(g.cot_misgrounded)} ({g.n_misgrounded}) | {_pct(g.cot_no_find)} ({g.n_no_find}) | "
            f"{_pct(g.count_follows_listing)} ({g.count_one_find}) |")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from vpd.benchmarks.ablation_data import held_out_examples

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--test", required=True, help="dataset folder whose examples carry scene records")
    ap.add_argument("--split", default="val", help="only examples of this split ('' = all)")
    ap.add_argument("--limit", type=int, default=None, help="first N labelled examples (as the runs were scored)")
    ap.add_argument("--run", action="append", default=[], metavar="NAME=SOURCE",
                    help="a run folder or a rationales.jsonl (repeatable)")
    ap.add_argument("--benchmark", default="shapes", help="checker family")
    ap.add_argument("--out", required=True, help="folder for grounding.{json,md}")
    args = ap.parse_args(argv)
    try:
        examples = held_out_examples(args.test, args.split or None, args.limit)
    except FileNotFoundError as exc:
        print(exc, file=sys.stderr)
        return 2
    if not examples or not args.run:
        print("nothing to score: no labelled examples or no --run", file=sys.stderr)
        return 2
    rows = []
    for spec in args.run:
        name, sep, source = spec.partition("=")
        if not sep or not name or not source:
            print(f"--run wants NAME=SOURCE, got {spec!r}", file=sys.stderr)
            return 2
        try:
            predictions = read_predictions(source)
        except (FileNotFoundError, json.JSONDecodeError, KeyError) as exc:
            print(f"cannot read {source}: {exc}", file=sys.stderr)
            return 2
        rows.append(grounding(name, predictions, examples, benchmark=args.benchmark))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    command = "python -m vpd.benchmarks.rationale_grounding " + " ".join(argv if argv is not None else sys.argv[1:])
    (out / "grounding.json").write_text(json.dumps({"command": command, "runs": [asdict(g) for g in rows]}, indent=2))
    text = markdown(rows, command)
    (out / "grounding.md").write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
