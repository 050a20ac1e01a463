"""LSKD: localized question–answer–rationale triples written by an LLM from region verbalisations.

Region references are ``[k]`` in text (ids of :class:`~vpd.distill.verbalize.Region`, 0-based).
Output records follow LSKD's JSONL schema (the released LCK dataset)::

    {"image", "region": [ids the question refers to], "region_all": [ids referenced anywhere],
     "references": [{"name": "k", "boxes": [[x0, y0, x1, y1]]}],   # pixels, origin top-left
     "question": [tokens], "answer": [tokens], "rationale": [tokens],  # a reference is [k]
     "prediction": critic score in [0, 1] or null,
     "source", "index", "split"}

Token lists follow VCR/LSKD: words and punctuation as strings, a region reference as a one-element
list ``[k]``. :func:`tokens_to_text` turns them back into ``"... [k] ..."`` text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Sequence

from vpd.distill.lskd_parse import RawTriple, parse_triples
from vpd.distill.verbalize import Verbalisation

LSKD_PROMPT_VERSION = "2"  # 2: inferential questions (counting, relations, comparisons, "which would")
_REF_RE = re.compile(r"\[(\d{1,3})\]")
_TOKEN_RE = re.compile(r"\[\d{1,3}\]|[\w'’\-]+|[^\w\s]", re.UNICODE)


def image_file_name(image: str) -> str:
    """The file name of an image path (no folders, either slash), the seed and split key of an image,
    so that seeded choices and the critic's split are the same wherever the dataset lives."""
    return str(image).replace("\\", "/").rsplit("/", 1)[-1]


@dataclass(frozen=True, kw_only=True)
class Triple:
    """One localized triple about one image, in text form with ``[k]`` references."""

    image: str
    question: str
    answer: str
    rationale: str
    source: str  # "llm", "verbaliser", "perturbed", "human" …
    index: str = ""
    prediction: float | None = None
    label: bool | None = None  # accept (True) / reject (False) / unlabelled (None)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def refs(self) -> list[int]:
        return region_ids(self.question, self.answer, self.rationale)

    @property
    def question_refs(self) -> list[int]:
        return region_ids(self.question) or region_ids(self.answer)

    def text(self) -> str:
        return f"Q: {self.question} A: {self.answer} R: {self.rationale}"


def region_ids(*texts: str) -> list[int]:
    """Region ids referenced as ``[k]`` in ``texts``, in first-mention order, unique."""
    out: list[int] = []
    for t in texts:
        for m in _REF_RE.finditer(t or ""):
            k = int(m.group(1))
            if k not in out:
                out.append(k)
    return out


def to_tokens(text: str) -> list[str | list[int]]:
    """``"Is [0] red?"`` -> ``["Is", [0], "red", "?"]`` (LSKD/VCR token lists)."""
    out: list[str | list[int]] = []
    for tok in _TOKEN_RE.findall(text or ""):
        m = _REF_RE.fullmatch(tok)
        out.append([int(m.group(1))] if m else tok)
    return out


def tokens_to_text(tokens: Sequence[Any]) -> str:
    """The inverse of :func:`to_tokens` (spacing normalised: no space before punctuation)."""
    parts: list[str] = []
    for tok in tokens:
        if isinstance(tok, list):
            s = " and ".join(f"[{int(k)}]" for k in tok)
        else:
            s = str(tok)
        if parts and (re.fullmatch(r"[^\w\s\[]", s) and s not in "([{\"'"):
            parts[-1] += s
        else:
            parts.append(s)
    return " ".join(parts)


def to_record(t: Triple, verb: Verbalisation | None, *, split: str = "") -> dict[str, Any]:
    """The LSKD JSONL record of a triple (references carry the boxes of every referenced region)."""
    refs = t.refs
    references = []
    if verb is not None:
        for k in refs:
            r = verb.region(k)
            if r is not None:
                references.append({"name": str(k), "boxes": [[float(r.box.x0), float(r.box.y0), float(r.box.x1), float(r.box.y1)]]})
    return {
        "image": t.image, "region": t.question_refs, "region_all": refs, "references": references,
        "question": to_tokens(t.question), "answer": to_tokens(t.answer), "rationale": to_tokens(t.rationale),
        "prediction": t.prediction, "source": t.source, "index": t.index, "split": split,
        "label": t.label, "text": {"question": t.question, "answer": t.answer, "rationale": t.rationale},
    }


def from_record(rec: dict[str, Any]) -> Triple:
    """A :class:`Triple` from an LSKD record (token lists or the ``text`` block)."""
    text = rec.get("text") or {}

    def field_text(name: str) -> str:
        if text.get(name):
            return str(text[name])
        v = rec.get(name, "")
        return tokens_to_text(v) if isinstance(v, list) else str(v or "")

    label = rec.get("label")
    return Triple(image=str(rec.get("image", "")), question=field_text("question"), answer=field_text("answer"),
                  rationale=field_text("rationale"), source=str(rec.get("source", "")),
                  index=str(rec.get("index", "")), prediction=rec.get("prediction"),
                  label=None if label is None else bool(label))


# -- prompting ---------------------------------------------------------------------------------

_SHOT_VERB = (
    "Image: A kitchen counter with a mug and a laptop.\nRegions:\n[0] 40 210 120 300: white mug\n"
    "[1] 300 150 620 400: silver laptop\n[2] 10 5 200 90: window\n[3] 150 220 210 300: white mug"
)
_SHOT_TRIPLES = (
    "Q: How many of the regions could hold a hot drink?\nA: Two.\n"
    "R: [0] and [3] are both mugs, while [1] is a laptop and [2] a window, so two regions hold a drink.\n"
    "Q: Which would you move to make room to type on [1], [0] or [2]?\nA: [0].\n"
    "R: [0] is a mug on the counter near the laptop [1]; the window [2] cannot be moved.\n"
    "Q: Which is bigger, [3] or [1]?\nA: [1].\n"
    "R: [1] spans 320 by 250 pixels and [3] only 60 by 80, so the laptop [1] is bigger.\n"
    "Q: Are [0] and [3] the same color?\nA: Yes.\n"
    "R: [0] and [3] are both described as white mugs, so they share a color."
)

#: What the LLM is asked for (LSKD): questions that need a small inference over the regions, each
#: answered with a rationale that cites the ``[k]`` regions it relies on.
LSKD_HEADER = (
    "Write questions about the regions of an image that need a small inference: counting across "
    "regions, relations between regions, comparisons, or which region would suit a purpose. Give "
    "each question an answer and a rationale that explains the inference and cites the regions it "
    "uses by their ids in brackets, like [0]. Use only facts from the description.\n\n"
)


def lskd_prompt(verb: Verbalisation, *, max_regions: int = 12) -> str:
    """The few-shot prompt for one verbalisation (``Q:/A:/R:`` lines follow it)."""
    only = [r.id for r in verb.regions[:max_regions]]
    return (LSKD_HEADER + _SHOT_VERB + "\nQuestions:\n" + _SHOT_TRIPLES + "\n\n"
            + verb.text(only=only) + "\nQuestions:\nQ:")


@dataclass(frozen=True, kw_only=True)
class Rejected:
    """A triple (or a whole completion) that was not kept, with the reason; written to
    ``lskd_rejects.jsonl``."""

    image: str
    stage: str  # "sampler" | "parse" | "regions"
    reason: str
    text: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"image": self.image, "stage": self.stage, "reason": self.reason, "text": self.text[:2000]}


def triples_from_completion(text: str, verb: Verbalisation, *, source: str = "llm", index_prefix: str = "",
                            continues_q: bool = True) -> tuple[list[Triple], list[Rejected]]:
    """Parse one completion for ``verb``; triples citing unknown regions or none are rejected.

    ``continues_q``: the prompt ended with ``"Q:"``, so the completion starts inside a question.
    """
    parsed = parse_triples(("Q: " + text) if continues_q and not text.lstrip().startswith(("{", "[{")) else text)
    rejected = [Rejected(image=verb.image, stage="parse", reason=e, text=text) for e in parsed.errors]
    known = {r.id for r in verb.regions}
    out: list[Triple] = []
    for i, raw in enumerate(parsed.triples):
        refs = region_ids(raw.question, raw.answer, raw.rationale)
        unknown = [k for k in refs if k not in known]
        if unknown:
            rejected.append(Rejected(image=verb.image, stage="regions", reason=f"unknown regions {unknown}",
                                     text=f"Q: {raw.question} A: {raw.answer} R: {raw.rationale}"))
            continue
        if not refs:
            rejected.append(Rejected(image=verb.image, stage="regions", reason="refers to no region",
                                     text=f"Q: {raw.question} A: {raw.answer} R: {raw.rationale}"))
            continue
        out.append(Triple(image=verb.image, question=raw.question, answer=raw.answer, rationale=raw.rationale,
                          source=source, index=f"{index_prefix}{source}-{i}"))
    return out, rejected


def llm_triples(verbs: Sequence[Verbalisation], sampler: Any, *, n: int = 1, temperature: float = 0.7,
                max_tokens: int = 200, batch_size: int = 4, seed: int | None = 0,
                progress: Any = None) -> tuple[list[Triple], list[Rejected], dict[str, int]]:
    """Ask ``sampler`` for triples about every verbalisation with regions (``n`` completions each).

    Returns ``(triples, rejected, counts)``; sampler failures and unparseable output are
    rejections, never exceptions.
    """
    triples: list[Triple] = []
    rejected: list[Rejected] = []
    counts = {"prompts": 0, "completions": 0, "completion_errors": 0, "prompt_tokens": 0, "completion_tokens": 0}
    todo = [v for v in verbs if v.regions]
    for start in range(0, len(todo), batch_size):
        chunk = todo[start:start + batch_size]
        prompts = [lskd_prompt(v) for v in chunk]
        counts["prompts"] += len(prompts)
        try:
            results = sampler.generate(prompts, n=n, temperature=temperature, max_tokens=max_tokens,
                                       stop=["\n\nImage:", "\nImage:", "\nRegions:"], seed=seed)
        except Exception as exc:
            rejected.extend(Rejected(image=v.image, stage="sampler", reason=f"{type(exc).__name__}: {exc}") for v in chunk)
            counts["completion_errors"] += len(chunk) * n
            continue
        for v, comps in zip(chunk, results):
            for j, c in enumerate(comps):
                counts["completions"] += 1
                counts["prompt_tokens"] += int(getattr(c, "prompt_tokens", 0) or 0)
                counts["completion_tokens"] += int(getattr(c, "completion_tokens", 0) or 0)
                if getattr(c, "error", None):
                    counts["completion_errors"] += 1
                    rejected.append(Rejected(image=v.image, stage="sampler", reason=str(c.error)))
                    continue
                ts, rj = triples_from_completion(c.text, v, source="llm", index_prefix=f"{j}-")
                triples.extend(ts)
                rejected.extend(rj)
        if progress is not None:
            progress(len(chunk))
    return triples, rejected, counts
