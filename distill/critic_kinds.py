"""The LSKD critic kinds, one registry (``CRITIC_KINDS``): ``image`` (default) and ``text``.

* ``image`` — :class:`~vpd.distill.critic_image.ImageCritic`: the text features plus the cited
  regions' pixels; saved as ``image_critic.npz`` + ``image_critic.json``;
* ``text`` — :class:`~vpd.distill.critic.Critic`: triple + verbalisation only; saved as
  ``critic.npz`` + ``critic.json``.

Both score a triple in [0, 1] (``critic.score(triples, verbs)``, ``verbs`` keyed by image) and are
trained here the same way (:func:`train_kind`): labelled triples, split by image
(:func:`~vpd.distill.critic.heldout_split`), balanced logistic regression, metrics on the held-out
triples at ``threshold``. A saved folder's kind is read from the file it holds (:func:`saved_kinds`);
:func:`load_critic` refuses a folder that holds only the other kind.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from vpd.distill.critic import Critic, Metrics, MiniLMEmbedder, evaluate_scores, heldout_split, train_critic
from vpd.distill.critic_image import ImageCritic, train_image_critic
from vpd.distill.lskd import Triple
from vpd.distill.verbalize import Verbalisation
from vpd.registry import Registry

DEFAULT_KIND = "image"


@dataclass(frozen=True, kw_only=True)
class CriticKind:
    """How to train, save-detect and load one kind of critic."""

    name: str
    marker: str  # the file a saved critic of this kind holds
    description: str
    train: Callable[..., tuple[Any, Metrics, dict[str, Any]]]
    load: Callable[..., Any]


CRITIC_KINDS: Registry[CriticKind] = Registry("critic kind")


def _train_image(triples: Sequence[Triple], verbs: Mapping[str, Verbalisation], *, embedder: Any = None,
                 test_frac: float = 0.3, seed: int = 0, c: float = 1.0, threshold: float = 0.8,
                 student: str | Path | None = None) -> tuple[ImageCritic, Metrics, dict[str, Any]]:
    """:func:`~vpd.distill.critic.train_critic`'s contract for the image-aware critic (same split)."""
    embedder = embedder or MiniLMEmbedder()
    labelled = [t for t in triples if t.label is not None]
    if len(labelled) < 10:
        raise ValueError(f"need at least 10 labelled triples to train a critic, got {len(labelled)}")
    y = np.asarray([bool(t.label) for t in labelled])
    if len(set(y.tolist())) < 2:
        raise ValueError("the labels hold only one class; the critic needs accepted and rejected triples")
    tr, te = heldout_split(labelled, y, test_frac, seed)
    critic = train_image_critic(labelled, verbs, embedder=embedder, student=student, train_idx=tr, c=c,
                                threshold=threshold)
    scores = critic.score([labelled[i] for i in te], verbs)
    metrics = evaluate_scores(scores, y[te].tolist(), threshold)
    critic.meta.update(n_test=len(te), metrics=metrics.to_dict())
    summary = {"n_labelled": len(labelled), "n_train": len(tr), "n_test": len(te),
               "train_positive_rate": float(y[tr].mean()), "test_indices": [labelled[i].index for i in te],
               "test_images": sorted({labelled[i].image for i in te})}
    return critic, metrics, summary


def _train_text(triples: Sequence[Triple], verbs: Mapping[str, Verbalisation], *, student: Any = None,
                **kw: Any) -> tuple[Critic, Metrics, dict[str, Any]]:
    if student is not None:
        raise ValueError("--student adds crop embeddings to the image-aware critic; the text critic has no pixels")
    return train_critic(triples, verbs, **kw)


CRITIC_KINDS.add("image", CriticKind(
    name="image", marker="image_critic.npz", train=_train_image, load=ImageCritic.load,
    description="image-aware: text features + the cited regions' pixels"))
CRITIC_KINDS.add("text", CriticKind(
    name="text", marker="critic.npz", train=_train_text, load=Critic.load,
    description="text-only: the triple and the tools' verbalisation"))


def saved_kinds(folder: str | Path) -> list[str]:
    """The kinds of critic saved in ``folder`` (by marker file), in registry order."""
    return [k for k in CRITIC_KINDS.in_order() if (Path(folder) / CRITIC_KINDS.get(k).marker).is_file()]


def check_saved(folder: str | Path, kind: str = DEFAULT_KIND) -> None:
    """Raise unless ``folder`` holds a ``kind`` critic: ValueError if it holds only another kind
    (the message names it and the option that would use it), FileNotFoundError if it holds none."""
    spec = CRITIC_KINDS.get(kind)
    have = saved_kinds(folder)
    if kind not in have:
        if have:
            other = CRITIC_KINDS.get(have[0])
            raise ValueError(f"{folder} holds a {other.name} critic ({other.marker}, {other.description}), "
                             f"not the {kind} critic that was asked for ({spec.marker}); pass --critic-kind "
                             f"{other.name} to use it, or train one of kind {kind} with "
                             f"`vpd lskd train-critic RUN --kind {kind}`")
        raise FileNotFoundError(f"no critic at {folder} (expected {spec.marker} for a {kind} critic; "
                                f"train one with `vpd lskd train-critic RUN --kind {kind}`)")


def load_critic(folder: str | Path, kind: str = DEFAULT_KIND, *, embedder: Any = None) -> Any:
    """The ``kind`` critic saved in ``folder`` (refused as in :func:`check_saved`)."""
    check_saved(folder, kind)
    return CRITIC_KINDS.get(kind).load(folder, embedder=embedder)


def train_kind(kind: str, triples: Sequence[Triple], verbs: Mapping[str, Verbalisation], **kw: Any
               ) -> tuple[Any, Metrics, dict[str, Any]]:
    """Train a ``kind`` critic on labelled ``triples``: ``(critic, held-out metrics, summary)``;
    keyword options as :func:`~vpd.distill.critic.train_critic` (+ ``student`` for ``image``)."""
    return CRITIC_KINDS.get(kind).train(triples, verbs, **kw)


__all__ = ["CRITIC_KINDS", "CriticKind", "DEFAULT_KIND", "check_saved", "load_critic", "saved_kinds", "train_kind"]
