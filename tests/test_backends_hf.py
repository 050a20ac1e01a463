"""Transformers backends end to end on tiny random-init checkpoints built offline (no hub).

The models' answers are meaningless; what is checked is what a real checkpoint goes through:
loading from a local folder, pre/post-processing, result types and box formats, thresholds,
batched == one-by-one, weight hashes in the cache tag, and the errors for missing weights.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vpd.registry import UnknownNameError
from vpd.tools import MissingWeights, ToolError, load
from vpd.tools.tiny_models import make_tiny
from vpd.types import Box


def _img(seed: int, h: int, w: int) -> Image.Image:
    return Image.fromarray(np.random.RandomState(seed).randint(0, 255, (h, w, 3), dtype=np.uint8))


IMAGES = [_img(0, 48, 80), _img(1, 30, 20), _img(2, 64, 64)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    root = tmp_path_factory.mktemp("tiny")
    built: dict[str, str] = {}

    def get(kind: str) -> str:
        if kind not in built:
            built[kind] = str(make_tiny(kind, root / kind))
        return built[kind]

    return get


def _backend(tool: str, name: str, **opts):
    return load({tool: {"backend": name, **opts}}).backends[tool]


# -- detection: OWLv2 / OWL-ViT --------------------------------------------------------------
@pytest.mark.parametrize("name", ["owlv2", "owlvit"])
def test_owl_boxes_thresholds_and_batching(tiny, name):
    path = tiny(name)
    be = _backend("detect", name, model_path=path, threshold=0.0, nms_iou=1.0)
    for im in IMAGES:
        boxes = be.detect(im, "red car")
        assert boxes and all(isinstance(b, Box) for b in boxes)
        w, h = im.size
        for b in boxes:  # pixels, x0 <= x1, y0 <= y1, inside the image
            assert 0 <= b.x0 <= b.x1 <= w and 0 <= b.y0 <= b.y1 <= h
            assert b.label == "red car" and 0.0 <= b.score <= 1.0
        assert [b.score for b in boxes] == sorted((b.score for b in boxes), reverse=True)
    scores = [b.score for b in be.detect(IMAGES[0], "cat")]
    cut = float(np.median(scores))
    strict = _backend("detect", name, model_path=path, threshold=cut, nms_iou=1.0)
    kept = strict.detect(IMAGES[0], "cat")
    assert 0 < len(kept) < len(scores) and all(b.score >= cut for b in kept)
    queries = ["cat", "a blue dog", "person"]
    one = [be.detect(im, q) for im, q in zip(IMAGES, queries)]
    batch = be.detect_batch(IMAGES, [{"query": q} for q in queries])
    for a, b in zip(one, batch):
        assert [x.label for x in a] == [x.label for x in b]
        np.testing.assert_allclose([[x.x0, x.y0, x.x1, x.y1, x.score] for x in a],
                                   [[x.x0, x.y0, x.x1, x.y1, x.score] for x in b], rtol=1e-4, atol=1e-3)


def test_owl_through_toolbox_json_and_cache_tag(tiny):
    path = tiny("owlv2")
    tb = load({"detect": {"backend": "owlv2", "model_path": path, "threshold": 0.0}})
    rows, cached = tb.call_json("detect", IMAGES[0], query="cat")
    assert not cached and rows and all(len(r) == 6 and isinstance(r[5], str) for r in rows)
    tag = tb.backends["detect"].cache_tag()
    assert tag.startswith("owlv2:") and len(tag.split(":")[-1]) == 12


# -- image-text matching: CLIP / SigLIP ------------------------------------------------------
@pytest.mark.parametrize("name", ["clip", "siglip"])
def test_clip_like_matching(tiny, name):
    path = tiny(name)
    be = _backend("best_text_match", name, model_path=path)
    options = [["cat", "dog", "red car"], ["a", "b"], ["sphere", "cube", "cylinder", "triangle"]]
    one = [be.best_text_match(im, o) for im, o in zip(IMAGES, options)]
    assert all(a in o for a, o in zip(one, options))
    assert be.best_text_match_batch(IMAGES, [{"options": o} for o in options]) == one
    score = be.verify_property_score(IMAGES[0], "car", "red")
    assert isinstance(score, float) and 0.0 < score < 1.0
    assert isinstance(be.verify_property(IMAGES[0], "car", "red"), bool)
    # the threshold decides: below the score -> True, above -> False
    lo = _backend("verify_property", name, model_path=path, threshold=score - 1e-3)
    hi = _backend("verify_property", name, model_path=path, threshold=score + 1e-3)
    assert lo.verify_property(IMAGES[0], "car", "red") is True
    assert hi.verify_property(IMAGES[0], "car", "red") is False
    args = [{"name": "car", "prop": "red"}, {"name": "cube", "prop": "blue"}, {"name": "dog", "prop": "wet"}]
    assert be.verify_property_batch(IMAGES, args) == [be.verify_property(im, **a) for im, a in zip(IMAGES, args)]
    bad = be.best_text_match_batch([IMAGES[0], IMAGES[1]], [{"options": []}, {"options": ["x", "y"]}])
    assert isinstance(bad[0], Exception) and bad[1] in ("x", "y")  # a bad input costs only itself


# -- depth -----------------------------------------------------------------------------------
@pytest.mark.parametrize("name", ["depth_anything", "dpt"])
def test_depth(tiny, name):
    be = _backend("depth", name, model_path=tiny(name))
    one = [be.depth(im) for im in IMAGES]
    assert all(isinstance(d, float) and 1.0 <= d <= 100.0 for d in one)
    dmap = be.depth_map(IMAGES[0])
    assert dmap.shape == (48, 80) and float(dmap.min()) == pytest.approx(1.0)
    np.testing.assert_allclose(be.depth_batch(IMAGES, [{}] * 3), one, rtol=1e-4)


# -- generative VQA / captioning ---------------------------------------------------------------
def _check_generative(be):
    qs = ["what is this?", "how many cats are there?", "what color is the cube?"]
    one = [be.vqa(im, q) for im, q in zip(IMAGES, qs)]
    assert all(isinstance(a, str) for a in one)
    assert len(set(one)) > 1  # answers depend on the inputs
    assert be.vqa_batch(IMAGES, [{"question": q} for q in qs]) == one
    caps = [be.caption(im) for im in IMAGES]
    assert all(isinstance(c, str) for c in caps)
    assert be.caption_batch(IMAGES, [{}] * 3) == caps


def test_blip(tiny):
    be = _backend("vqa", "blip", model_path=tiny("blip_vqa"), caption_model_path=tiny("blip_caption"),
                  max_new_tokens=8)
    tag_before = be.cache_tag()
    _check_generative(be)
    assert be.cache_tag() != tag_before  # the captioning model's weights joined the hash


def test_blip_caption_model_missing_is_named(tiny, tmp_path):
    be = _backend("vqa", "blip", model_path=tiny("blip_vqa"), caption_model_path=str(tmp_path / "nope"))
    assert isinstance(be.vqa(IMAGES[0], "what is this?"), str)
    with pytest.raises(MissingWeights, match="caption_model_path") as err:
        be.caption(IMAGES[0])
    assert str(tmp_path / "nope") in str(err.value)


@pytest.mark.parametrize("name", ["blip2", "paligemma"])
def test_decoder_vqa(tiny, name):
    _check_generative(_backend("vqa", name, model_path=tiny(name), max_new_tokens=8))


# -- errors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("name,tool,key", [("owlv2", "detect", "model_path"), ("siglip", "verify_property", "model_path"),
                                           ("blip2", "vqa", "model_path"), ("depth_anything", "depth", "model_path"),
                                           ("groundingdino", "detect", "checkpoint"),
                                           ("ultralytics", "detect", "model_path")])
def test_missing_weights_name_key_and_path(tmp_path, name, tool, key):
    missing = str(tmp_path / "no-such-weights")
    with pytest.raises(MissingWeights) as err:
        load({tool: {"backend": name, key: missing}})
    assert err.value.key == key and err.value.path == missing
    assert f"`{key}`" in str(err.value) and missing in str(err.value)


def test_default_path_is_named_when_unset():
    with pytest.raises(MissingWeights, match="/models/owlv2-base-patch16-ensemble"):
        load("detect=owlv2")


def test_bad_configs(tiny):
    with pytest.raises(UnknownNameError, match="did you mean 'owlv2'"):
        load({"detect": {"backend": "owlv3", "model_path": "x"}})
    with pytest.raises(ToolError, match="does not provide tool 'vqa'"):
        load({"vqa": {"backend": "owlv2", "model_path": tiny("owlv2")}})
    with pytest.raises(MissingWeights, match="expected a folder"):
        load({"detect": {"backend": "owlv2", "model_path": __file__}})
