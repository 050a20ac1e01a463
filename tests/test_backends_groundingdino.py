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


@pytest.mark.slow
def test_tiny_groundingdino_end_to_end(tmp_path):
    """Swin-T + 1 encoder/decoder layer, tiny local BERT; checkpoint saved and reloaded (~130 MB)."""
    root = make_tiny("groundingdino", tmp_path / "gdino")
    opts = {"backend": "groundingdino", "checkpoint": str(root / "checkpoint.pth"),
            "text_encoder": str(root / "text_encoder"), "config": str(root / "config.py"), "image_size": 64}
    be = load({"detect": {**opts, "box_threshold": 0.0}}).backends["detect"]
    img = Image.fromarray(np.random.RandomState(0).randint(0, 255, (48, 80, 3), dtype=np.uint8))
    boxes = be.detect(img, "red car")
    assert len(boxes) == 30  # one per query of the tiny config at threshold 0
    for b in boxes:
        assert 0 <= b.x0 <= b.x1 <= 80 and 0 <= b.y0 <= b.y1 <= 48 and b.label == "red car"
    assert be.detect(img, "red car") == boxes  # deterministic
    none = load({"detect": {**opts, "box_threshold": 1.0}}).backends["detect"].detect(img, "red car")
    assert none == []
    with pytest.raises(ValueError, match="does not match config"):
        import torch

        torch.save({"model": {"unrelated.weight": torch.zeros(1)}}, tmp_path / "bad.pth")
        load({"detect": {**opts, "checkpoint": str(tmp_path / "bad.pth")}})
