"""GroundingDINO (groundingdino-py 0.4.0): loading errors, and a tiny Swin-T model end to end."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vpd.tools import MissingWeights, load
from vpd.tools.tiny_models import make_tiny


def test_missing_checkpoint_and_text_encoder_are_named(tmp_path):
    ckpt = tmp_path / "g.pth"
    with pytest.raises(MissingWeights, match="checkpoint"):
        load({"detect": {"backend": "groundingdino", "checkpoint": str(ckpt), "text_encoder": str(tmp_path)}})
    ckpt.write_bytes(b"x")
    with pytest.raises(MissingWeights, match="text_encoder") as err:
        load({"detect": {"backend": "groundingdino", "checkpoint": str(ckpt), "text_encoder": str(tmp_path / "bert")}})
    assert str(tmp_path / "bert") in str(err.value)


def test_default_text_encoder_location_is_named(tmp_path):
    ckpt = tmp_path / "g.pth"
    ckpt.write_bytes(b"x")
    with pytest.raises(MissingWeights, match="/models/bert-base-uncased"):
        load({"detect": {"backend": "groundingdino", "checkpoint": str(ckpt)}})


@pytest.fixture(scope="module")
def gdino(tmp_path_factory):
    """A tiny Swin-T GroundingDINO (1 encoder/decoder layer, tiny local BERT) saved as a checkpoint
    (~130 MB), and the options that load it."""
    root = make_tiny("groundingdino", tmp_path_factory.mktemp("gdino") / "gdino")
    return root, {"backend": "groundingdino", "checkpoint": str(root / "checkpoint.pth"),
                  "text_encoder": str(root / "text_encoder"), "config": str(root / "config.py"), "image_size": 64}


def _detector(opts, **more):
    return load({"detect": {**opts, **more}}).backends["detect"]


IMG = Image.fromarray(np.random.RandomState(0).randint(0, 255, (48, 80, 3), dtype=np.uint8))


@pytest.mark.slow
def test_tiny_groundingdino_end_to_end(gdino):
    _, opts = gdino
    be = _detector(opts, box_threshold=0.0, text_threshold=0.0)
    assert be.load_report.missing == () and be.load_report.unexpected == ()
    boxes = be.detect(IMG, "red car")
    assert len(boxes) == 30  # one per query of the tiny config at threshold 0
    for b in boxes:
        assert 0 <= b.x0 <= b.x1 <= 80 and 0 <= b.y0 <= b.y1 <= 48 and b.label == "red car"
    assert be.detect(IMG, "red car") == boxes  # deterministic
    assert _detector(opts, box_threshold=1.0).detect(IMG, "red car") == []


@pytest.mark.slow
def test_text_threshold_is_honoured(gdino):
    """A box needs one of the query's own tokens above ``text_threshold`` (not [CLS]/[SEP]/".")."""
    import torch

    _, opts = gdino
    be = _detector(opts, box_threshold=0.0, text_threshold=0.0)
    caption = "red car."
    positions = be.query_positions(caption)
    ids = be.model.tokenizer(caption)["input_ids"]
    assert len(positions) == len(ids) - 3  # [CLS], ".", [SEP] excluded
    with torch.inference_mode():
        out = be.model(be._tensor(IMG)[None], captions=[caption])
    phrase = out["pred_logits"].float().sigmoid()[0][:, positions].max(dim=1).values
    cut = float(phrase.median())
    kept = _detector(opts, box_threshold=0.0, text_threshold=cut).detect(IMG, "red car")
    assert 0 < len(kept) < 30 and len(kept) == int((phrase > cut).sum())
    assert _detector(opts, box_threshold=0.0, text_threshold=1.0).detect(IMG, "red car") == []


@pytest.mark.slow
def test_checkpoint_keys_are_checked(gdino, tmp_path, caplog):
    import torch

    root, opts = gdino
    state = torch.load(root / "checkpoint.pth", map_location="cpu", weights_only=False)["model"]
    used = next(k for k in state if k.startswith("transformer.") and k.endswith(".weight"))
    # one missing weight the model uses fails the load, naming it
    torch.save({"model": {k: v for k, v in state.items() if k != used}}, tmp_path / "one-missing.pth")
    with pytest.raises(ValueError, match=f"1 missing weight.*{used}"):
        _detector(opts, checkpoint=str(tmp_path / "one-missing.pth"))
    with pytest.raises(ValueError, match="missing weight"):
        torch.save({"model": {"unrelated.weight": torch.zeros(1)}}, tmp_path / "bad.pth")
        _detector(opts, checkpoint=str(tmp_path / "bad.pth"))
    # the BERT pooler is never run: absent is fine; unknown extra keys are reported, not loaded
    pooler = [k for k in state if k.startswith("bert.pooler.")]
    assert pooler
    extra = {k: v for k, v in state.items() if k not in pooler}
    extra["module_from_elsewhere.weight"] = torch.zeros(2)
    torch.save({"model": extra}, tmp_path / "lenient.pth")
    be = _detector(opts, checkpoint=str(tmp_path / "lenient.pth"))
    assert set(be.load_report.unused_missing) == set(pooler) == set(be.load_report.missing)
    assert be.load_report.unexpected == ("module_from_elsewhere.weight",)
    assert "module_from_elsewhere.weight" in caplog.text and "bert.pooler" in caplog.text


@pytest.mark.slow
def test_every_key_setting_changes_the_cache_key(gdino, tmp_path):
    import shutil

    from vpd.tools.backends.groundingdino import GroundingDinoBackend

    root, opts = gdino
    tag = _detector(opts).cache_tag()
    assert GroundingDinoBackend.key_settings == {"box_threshold", "text_threshold", "image_size", "dtype"}
    for key, value in [("box_threshold", 0.3), ("text_threshold", 0.3), ("image_size", 96)]:
        assert _detector(opts, **{key: value}).cache_tag() != tag, key
    assert _detector(opts, dtype="float32", device="cpu", max_batch=1).cache_tag() == tag  # dtype is fixed
    cfg = tmp_path / "config.py"  # the config is hashed with the weights
    shutil.copy(root / "config.py", cfg)
    assert _detector(opts, config=str(cfg)).cache_tag() == tag  # same content elsewhere: same key
    cfg.write_text(cfg.read_text().replace("pe_temperatureH = 20", "pe_temperatureH = 10"))
    assert _detector(opts, config=str(cfg)).cache_tag() != tag
    cfg.write_text(cfg.read_text().replace("num_queries = 30", "num_queries = 20"))  # shapes change
    with pytest.raises(ValueError, match="(?s)does not match the model.*tgt_embed"):
        _detector(opts, config=str(cfg))
