"""Ultralytics YOLO on a random-init ``yolov8n.yaml`` and YOLO-World on ``yolov8s-worldv2.yaml``
with a tiny CLIP text tower (all offline): box formats, class mapping, thresholds, batching."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from vpd.tools import UnsupportedQuery, load
from vpd.tools.backends.yolo import COCO_CLASSES, query_to_class
from vpd.tools.toolbox import boxes_from_json
from vpd.tools.tiny_models import make_tiny


def _img(seed: int, h: int, w: int) -> Image.Image:
    return Image.fromarray(np.random.RandomState(seed).randint(0, 255, (h, w, 3), dtype=np.uint8))


IMAGES = [_img(0, 96, 128), _img(1, 64, 64), _img(2, 96, 128)]


@pytest.mark.parametrize("query,cls", [("red car", "car"), ("two people", "person"), ("the women", "person"),
                                       ("cars", "car"), ("traffic lights", "traffic light"),
                                       ("a hot dog", "hot dog"), ("dogs", "dog"), ("the phone", "cell phone"),
                                       ("wine glasses", "wine glass"), ("buses", "bus")])
def test_query_to_coco_class(query, cls):
    assert query_to_class(query, list(COCO_CLASSES)) == cls


def test_unknown_query_is_refused_not_guessed():
    with pytest.raises(UnsupportedQuery, match="unicorn"):
        query_to_class("a unicorn", list(COCO_CLASSES))


def _check_boxes(boxes, image, label):
    w, h = image.size
    for b in boxes:
        assert 0 <= b.x0 <= b.x1 <= w and 0 <= b.y0 <= b.y1 <= h
        assert b.label == label and 0.0 <= b.score <= 1.0
    assert [b.score for b in boxes] == sorted((b.score for b in boxes), reverse=True)


def _same(a, b):
    assert [x.label for x in a] == [x.label for x in b]
    np.testing.assert_allclose([[x.x0, x.y0, x.x1, x.y1, x.score] for x in a],
                               [[x.x0, x.y0, x.x1, x.y1, x.score] for x in b], rtol=1e-4, atol=1e-3)


def test_ultralytics_random_init_yolov8n():
    torch.manual_seed(0)
    tb = load({"detect": {"backend": "ultralytics", "model_path": "yolov8n.yaml", "threshold": 1e-7, "imgsz": 128}})
    be = tb.backends["detect"]
    assert be.cache_tag().endswith("random-yolov8n.yaml")
    boxes = be.detect(IMAGES[0], "two people")
    assert boxes, "a random-init head still scores every anchor above 1e-7"
    _check_boxes(boxes, IMAGES[0], "person")
    queries = ["person", "cars", "dog"]
    one = [be.detect(im, q) for im, q in zip(IMAGES, queries)]
    batch = be.detect_batch(IMAGES, [{"query": q} for q in queries])
    for a, b in zip(one, batch):
        _same(a, b)
    mixed = be.detect_batch(IMAGES[:2], [{"query": "unicorn"}, {"query": "person"}])
    assert isinstance(mixed[0], UnsupportedQuery) and isinstance(mixed[1], list)
    cut = float(np.median([b.score for b in boxes]))
    strict = load({"detect": {"backend": "ultralytics", "model_path": "yolov8n.yaml", "threshold": cut, "imgsz": 128}})
    strict.backends["detect"].model = be.model  # same random weights
    kept = strict.backends["detect"].detect(IMAGES[0], "person")
    assert all(b.score >= cut for b in kept) and len(kept) <= len(boxes)


def test_ultralytics_one_forward_pass_per_image_serves_every_query(tmp_path):
    from vpd.tools.cache import ToolCache

    torch.manual_seed(0)
    spec = {"detect": {"backend": "ultralytics", "model_path": "yolov8n.yaml", "threshold": 1e-7, "imgsz": 128}}
    tb = load(spec, cache=ToolCache(tmp_path / "tools.sqlite"))
    be = tb.backends["detect"]
    predicted = []
    real_predict = be._predict
    be._predict = lambda ims: predicted.append(len(ims)) or real_predict(ims)  # count the model passes
    queries = ["person", "cars", "dog", "two people"]
    cached = [tb.call_json("detect", IMAGES[0], query=q)[1] for q in queries]
    assert cached == [False, True, True, True] and sum(predicted) == 1
    assert tb.stats["backend_calls"] == 1 and tb.stats["analysis_hits"] == 2 and tb.stats["cache_hits"] == 1
    plain = load(spec)  # no cache: same random weights, every query its own pass, same boxes
    plain.backends["detect"].model = be.model
    for q in queries:
        _same(boxes_from_json(tb.call("detect", IMAGES[0], query=q)), plain.backends["detect"].detect(IMAGES[0], q))
    with pytest.raises(UnsupportedQuery):
        tb.call_json("detect", IMAGES[0], query="unicorn")
    assert sum(predicted) == 1
    # a host without the model (a Ray shard) answers from the analysis + the JSON answer context alone
    analysis = be.analyse(IMAGES[0])
    context = json.loads(json.dumps(be.answer_context()))
    assert context["classes"][0] == "person" and len(context["classes"]) == 80
    for q in queries:
        _same(type(be).answer_from(context, "detect", analysis, query=q), be.answer("detect", analysis, query=q))


@pytest.mark.slow
def test_yolo_world_open_vocabulary_with_local_clip_text(tmp_path):
    clip = make_tiny("clip512", tmp_path / "clip512")
    torch.manual_seed(0)
    be = load({"detect": {"backend": "yolo_world", "model_path": "yolov8s-worldv2.yaml", "clip_text_model": str(clip),
                          "threshold": 1e-7, "imgsz": 128}}).backends["detect"]
    emb = be.text_embedding("unicorn")
    assert emb.shape == (512,) and float(emb.norm()) == pytest.approx(1.0, abs=1e-5)
    boxes = be.detect(IMAGES[0], "unicorn")  # any words: open vocabulary
    assert boxes
    _check_boxes(boxes, IMAGES[0], "unicorn")
    queries = ["unicorn", "red car", "unicorn"]
    one = [be.detect(im, q) for im, q in zip(IMAGES, queries)]
    batch = be.detect_batch(IMAGES, [{"query": q} for q in queries])
    for a, b in zip(one, batch):
        _same(a, b)
    assert be.model.model.names in ({0: "unicorn"}, {0: "red car"})  # one class per set_classes group
