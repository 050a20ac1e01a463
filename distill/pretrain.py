"""``vpd pretrain``: the student's first stage, where it learns to see (PaliGemma's pretraining in
miniature), then :func:`detection_quality` of the resulting base on held-out scenes.

* data: the generic tasks of :mod:`vpd.distill.pretrain_tasks` on the **train** scenes of a
  ``shapes`` dataset, written as a mixture (``BASE/pretrain_data/train.jsonl``) and checked to
  contain no evaluation question template;
* model: a registered preset (default ``student-s``) with a new byte-level BPE that includes
  ``loc_bins`` location tokens; trained by :func:`vpd.distill.vlm_train.train` (same loop,
  checkpoints and metrics as instruction tuning);
* quality: ``detect <phrase>`` decoded greedily on ``val`` scenes; a predicted box matches a
  ground-truth box of the phrase at IoU >= 0.5 (greedy one-to-one); recall, precision and the
  share of phrases whose object count is exactly right, in ``BASE/detection.json``; the same phrases
  as ``find <phrase>`` (answered in words, :func:`vpd.distill.caption_quality.score_finds`).

``vpd train --init BASE`` then instruction-tunes from this checkpoint (its tokenizer is kept).
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vpd.distill.caption_quality import prior_caption_quality, score_captions, score_finds
from vpd.distill.loc_tokens import DEFAULT_BINS, detections_text, parse_detections
from vpd.distill.pretrain_tasks import (DEFAULT_TASKS, PretrainScene, assert_not_eval_templates, heldout_scenes,
                                        pretrain_records, read_scenes, referring_phrase, shapes_vocab)


@dataclass(frozen=True, kw_only=True)
class PretrainResult:
    out: Path
    scenes: int
    records: int
    steps: int
    final_loss: float
    seconds: float
    detection: dict[str, Any]


def write_pretrain_mixture(data: str | Path, out: str | Path, *, tasks: dict[str, int] | None = None,
                           seed: int = 0, bins: int = DEFAULT_BINS, max_scenes: int | None = None
                           ) -> tuple[Path, dict[str, Any]]:
    """Write ``out/train.jsonl`` from the train scenes of ``data``; returns (folder, counts)."""
    scenes = read_scenes(data, "train")[:max_scenes]
    if not scenes:
        raise ValueError(f"{data}: no train-split scenes with scene records to pretrain on")
    records = pretrain_records(scenes, tasks, seed=seed, bins=bins)
    assert_not_eval_templates(records)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    per_task: dict[str, int] = {}
    for r in records:
        per_task[r["task"]] = per_task.get(r["task"], 0) + 1
    counts = {"scenes": len(scenes), "records": len(records), "per_task": per_task, "split": "train",
              "scene_ids_sha": _ids_digest([s.scene_id for s in scenes])}
    (out / "manifest.json").write_text(json.dumps(counts, indent=2) + "\n")
    return out, counts


def _ids_digest(ids: Sequence[str]) -> str:
    import hashlib

    return hashlib.sha256("\n".join(sorted(ids)).encode()).hexdigest()[:16]


def pretrain_config(*, steps: int, batch: int, lr: float, seed: int = 0, loc_bins: int = DEFAULT_BINS,
                    grid_weight: float = 1.0, grid_boxes: bool = False):
    """The pretraining recipe of ``vpd pretrain``: warmup over the first 10% (at most 100 steps),
    32-token prompts, 128-token targets, four checkpoints."""
    from vpd.distill.vlm_train import TrainConfig

    return TrainConfig(steps=steps, batch=batch, lr=lr, seed=seed, loc_bins=loc_bins, grid_weight=grid_weight,
                       grid_boxes=grid_boxes, warmup_steps=min(100, steps // 10), max_prefix=32, max_suffix=128,
                       ckpt_every=max(steps // 4, 1))


def pretrain(data: str | Path, out: str | Path, cfg, *, preset: str = "student-s",
             tasks: dict[str, int] | None = None, max_scenes: int | None = None, eval_scenes: int = 100,
             progress: bool = True) -> PretrainResult:
    """Build the pretraining mixture, train ``preset`` on it into ``out``, measure detection."""
    from vpd.distill.vlm_train import train

    t0 = time.time()
    out = Path(out)
    bins = cfg.loc_bins or DEFAULT_BINS
    cfg = dataclasses.replace(cfg, loc_bins=bins)
    mix, counts = write_pretrain_mixture(data, out / "pretrain_data", tasks=tasks, seed=cfg.seed, bins=bins,
                                         max_scenes=max_scenes)
    res = train(mix, preset, out, cfg, progress=progress)
    meta_path = out / "pretrain.json"
    detection = detection_quality(out, data, split="val", limit=eval_scenes, bins=bins) if eval_scenes else {}
    summary = {"data": str(Path(data).absolute()), "preset": preset, "tasks": tasks or DEFAULT_TASKS,
               "loc_bins": bins, **counts, "steps": res.steps_done, "final_loss": res.final_loss,
               "seconds": round(time.time() - t0, 1), "detection": detection}
    meta_path.write_text(json.dumps(summary, indent=2) + "\n")
    return PretrainResult(out=out, scenes=counts["scenes"], records=counts["records"], steps=res.steps_done,
                          final_loss=res.final_loss, seconds=time.time() - t0, detection=detection)


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``(x0, y0, x1, y1)`` boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def match_boxes(pred: Sequence[Sequence[float]], gt: Sequence[Sequence[float]], threshold: float = 0.5) -> int:
    """True positives of a greedy one-to-one matching (highest IoU first) at ``IoU >= threshold``."""
    pairs = sorted(((iou(p, g), i, j) for i, p in enumerate(pred) for j, g in enumerate(gt)), reverse=True)
    used_p, used_g, tp = set(), set(), 0
    for v, i, j in pairs:
        if v < threshold:
            break
        if i not in used_p and j not in used_g:
            used_p.add(i)
            used_g.add(j)
            tp += 1
    return tp


def detection_queries(scenes: Sequence[PretrainScene], per_scene: int = 3, seed: int = 1234
                      ) -> list[tuple[PretrainScene, str, list[dict]]]:
    """``(scene, phrase, the objects it selects)`` queries, present and absent, seeded."""
    vocab, out = shapes_vocab(), []
    for i, sc in enumerate(scenes):
        rng = np.random.default_rng([seed, i])
        for _ in range(per_scene):
            phrase, keep = referring_phrase(list(sc.objects), vocab, rng)
            out.append((sc, phrase, [o for o in sc.objects if keep(o)]))
    return out


def detection_quality(ckpt: str | Path, data: str | Path, *, split: str = "val", limit: int | None = 100,
                      bins: int = DEFAULT_BINS, batch: int = 32) -> dict[str, Any]:
    """Box recall / precision at IoU >= 0.5 and exact-count share of ``detect`` on held-out scenes, the
    grid head's accuracy and the ``caption en`` quality (:mod:`vpd.distill.caption_quality`, beside
    the most common training caption as the blind reference); ``find`` quality only for a base
    whose training records hold the ``find`` task."""
    from vpd.distill.vlm_predict import Predictor
    from vpd.distill.vlm_preprocess import preprocess_image

    scenes = heldout_scenes(data, split)[:limit]
    if not scenes:
        return {"split": split, "queries": 0}
    selected = detection_queries(scenes)
    queries = [(sc, p, [list(o["bbox"]) for o in objs]) for sc, p, objs in selected]
    predictor = Predictor.load(ckpt, batch=batch)
    size = predictor.model.config.vision.image_size
    pixels = {sc.image: preprocess_image(sc.image, size) for sc in scenes}
    query_pixels = np.stack([pixels[sc.image] for sc, _, _ in queries])
    longest = max(len(predictor.tok.encode(detections_text([(b, p) for b in g], sc.width, sc.height, bins)))
                  for sc, p, g in queries)
    texts = predictor.generate(query_pixels, [f"detect {p}" for _, p, _ in queries], max_new_tokens=longest + 8)
    captions = predictor.generate(np.stack([pixels[sc.image] for sc in scenes]), ["caption en"] * len(scenes),
                                  max_new_tokens=_longest_caption(predictor, scenes))
    trained_on_find = "pretrain:find" in _trained_tasks(ckpt)
    finds = predictor.generate(query_pixels, [f"find {p}" for _, p, _ in queries],
                               max_new_tokens=_longest_caption(predictor, scenes)) if trained_on_find else []
    tp = n_pred = n_gt = exact = 0
    for (sc, _, gt), text in zip(queries, texts):
        pred = [b for b, _ in parse_detections(text, sc.width, sc.height, bins)]
        tp += match_boxes(pred, gt)
        n_pred += len(pred)
        n_gt += len(gt)
        exact += int(len(pred) == len(gt))
    return {"split": split, "scenes": len(scenes), "queries": len(queries), "gt_boxes": n_gt,
            "grid_head": grid_quality(predictor.model, scenes, pixels),
            "pred_boxes": n_pred, "recall@0.5": tp / max(n_gt, 1), "precision@0.5": tp / max(n_pred, 1),
            "count_exact": exact / len(queries),
            "caption": {**score_captions(captions, [sc.objects for sc in scenes]),
                        "prior": prior_caption_quality(_train_captions(ckpt), [sc.objects for sc in scenes])},
            **({"find": score_finds(finds, [objs for _, _, objs in selected])} if trained_on_find else {}),
            "examples": [
                {"image": sc.image, "query": f"detect {p}", "output": t} for (sc, p, _), t in
                list(zip(queries, texts))[:5]] + [
                {"image": sc.image, "query": "caption en", "output": t} for sc, t in list(zip(scenes, captions))[:3]]}


def _longest_caption(predictor, scenes: Sequence[PretrainScene]) -> int:
    from vpd.distill.pretrain_tasks import caption

    rng = np.random.default_rng(0)
    return max(len(predictor.tok.encode(caption(list(sc.objects), sc.width, sc.height, rng, DEFAULT_BINS)[0][1]))
               for sc in scenes) + 8


def _trained_tasks(ckpt: str | Path) -> set[str]:
    """The ``task`` names of the base's own training records (``pretrain_data/train.jsonl``)."""
    file = Path(ckpt) / "pretrain_data" / "train.jsonl"
    if not file.is_file():
        return set()
    with file.open(encoding="utf-8") as fh:
        return {json.loads(line).get("task", "") for line in fh if line.strip()}


def _train_captions(ckpt: str | Path) -> list[str]:
    """The base's own training captions (``pretrain_data/train.jsonl``), for the blind reference."""
    file = Path(ckpt) / "pretrain_data" / "train.jsonl"
    if not file.is_file():
        return []
    out = []
    with file.open(encoding="utf-8") as fh:
        for line in fh:
            rec = json.loads(line)
            if rec.get("task") == "pretrain:caption":
                out.append(rec["suffix"])
    return out


def grid_quality(model, scenes: Sequence[PretrainScene], pixels: dict[str, np.ndarray]) -> dict[str, float]:
    """Accuracy of the dense grid head on held-out scenes: colour / shape / size on cells holding an
    object centre and object-vs-empty over all cells; with box groups, the share of box bins within
    one bin of the truth on those cells and the head read as a class-agnostic dense detector (box
    recall / precision at IoU >= 0.5 over every object); ``{}`` for a model without the head."""
    if not getattr(model.config.vision, "grid_head", 0):
        return {}
    import jax.numpy as jnp

    from vpd.distill.grid_targets import GROUPS, box_bins_of, decode_boxes, grid_targets, groups

    grid = model.config.vision.image_size // model.config.vision.patch_size
    box_bins = box_bins_of(model.config.vision.grid_head)
    px = jnp.asarray(np.stack([pixels[sc.image] for sc in scenes]))
    vision = model.vision(px)
    b, n, d = vision.shape
    logits = np.asarray(model.grid_head(vision.reshape(b * n, d)).reshape(b, n, -1))
    target = np.stack([grid_targets(sc.objects, sc.width, sc.height, grid, box_bins) for sc in scenes])
    has = target[..., 0] > 0
    out, start = {}, 0
    names = ("color", "shape", "size", "y0", "x0", "y1", "x1")
    near = []
    for g, k in enumerate(groups(box_bins)):
        pred = logits[..., start:start + k].argmax(-1)
        start += k
        if g < len(GROUPS):
            out[f"{names[g]}_acc"] = float((pred[has] == target[..., g][has]).mean()) if has.any() else 0.0
        else:
            near.append(np.abs(pred[has] - target[..., g][has]) <= 1)
        if g == 0:
            out["objectness_acc"] = float(((pred > 0) == has).mean())
    if box_bins:
        out["box_bins_within_1"] = float(np.concatenate(near).mean()) if has.any() else 0.0
        tp = n_pred = n_gt = 0
        for i, sc in enumerate(scenes):
            pred_boxes = [bx for _, bx in decode_boxes(logits[i], grid, sc.width, sc.height, box_bins)]
            gt = [list(o["bbox"]) for o in sc.objects]
            tp, n_pred, n_gt = tp + match_boxes(pred_boxes, gt), n_pred + len(pred_boxes), n_gt + len(gt)
        out["dense_recall@0.5"] = tp / max(n_gt, 1)
        out["dense_precision@0.5"] = tp / max(n_pred, 1)
    return out
