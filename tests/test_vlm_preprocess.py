"""PaliGemma preprocessing: odd image modes and sizes, value range, token layout."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from vpd.distill.vlm_preprocess import encode_example, encode_prompts, preprocess_image, to_rgb
from vpd.distill.vlm_tokenizer import train_bpe
from vpd.images import ImageLoadError


@pytest.mark.parametrize("mode,size", [("L", (40, 30)), ("RGBA", (17, 50)), ("RGB", (1, 1)), ("P", (9, 9)),
                                       ("I;16", (12, 12)), ("LA", (5, 3)), ("CMYK", (8, 8)), ("F", (6, 6))])
def test_any_mode_and_size_becomes_square_rgb_in_range(mode, size):
    rng = np.random.default_rng(0)
    img = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).convert(mode)
    x = preprocess_image(img, 32)
    assert x.shape == (32, 32, 3) and x.dtype == np.float32
    assert x.min() >= -1.0 and x.max() <= 1.0


def test_values_and_transparency():
    white = preprocess_image(Image.new("RGB", (3, 3), (255, 255, 255)), 8)
    black = preprocess_image(Image.new("L", (1, 1), 0), 8)
    np.testing.assert_allclose(white, 1.0)
    np.testing.assert_allclose(black, -1.0)
    clear = Image.new("RGBA", (4, 4), (255, 0, 0, 0))  # fully transparent red -> white background
    assert to_rgb(clear).getpixel((0, 0)) == (255, 255, 255)
    half = Image.new("RGBA", (4, 4), (0, 0, 0, 128))
    assert 120 < to_rgb(half).getpixel((0, 0))[0] < 135


def test_bad_image_paths_raise_clear_errors(tmp_path):
    with pytest.raises(ImageLoadError, match="not found"):
        preprocess_image(tmp_path / "missing.png", 16)
    bad = tmp_path / "bad.png"
    bad.write_bytes(b"not an image")
    with pytest.raises(ImageLoadError, match="corrupt"):
        preprocess_image(bad, 16)


def test_token_layout_bos_prefix_sep_suffix_eos():
    tok = train_bpe(["How many cubes?\n", "2", "three cubes"] * 5, vocab_size=300)
    enc = encode_example(tok, "How many cubes?", "2", max_prefix=16, max_suffix=4)
    p = [tok.bos_id] + tok.encode("How many cubes?\n")
    s = tok.encode("2") + [tok.eos_id]
    n = len(p) + len(s)
    assert enc.tokens[: n].tolist() == p + s and (enc.tokens[n:] == tok.pad_id).all()
    assert enc.valid.sum() == n and enc.suffix.sum() == len(s) and enc.suffix[len(p)]
    assert not enc.suffix[: len(p)].any() and not enc.truncated
    long = encode_example(tok, "How many cubes? " * 10, "three cubes " * 5, max_prefix=8, max_suffix=3)
    assert long.truncated and long.tokens[0] == tok.bos_id and long.valid.sum() == 11
    toks, valid = encode_prompts(tok, ["How many cubes?", "2"], max_prefix=12)
    assert valid[:, -1].all() and not valid[1, 0]  # left-padded, last position always real
    assert toks[1, -len(tok.encode("2\n")) - 1] == tok.bos_id
