"""Weight import from a Hugging Face PaliGemma checkpoint: logit parity and bad folders."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import jax  # noqa: E402
import torch  # noqa: E402  (installed by requirements.txt; never skipped)

from vpd.distill.vlm_config import preset  # noqa: E402
from vpd.distill.vlm_import import (CheckpointError, ShapeMismatchError, load_hf_paligemma,  # noqa: E402
                                    to_hf_config)
from vpd.distill.vlm_tokenizer import TokenizerError, train_bpe  # noqa: E402

TEXTS = ["how many red cubes are there?", "is there a blue sphere left of the cylinder?", "2", "yes", "no"] * 5


def save_hf_folder(folder: Path, seed: int = 0):
    """A tiny random PaliGemmaForConditionalGeneration + tokenizer saved like a Hub checkpoint."""
    from transformers import PaliGemmaForConditionalGeneration, PreTrainedTokenizerFast

    cfg = preset("test")
    torch.manual_seed(seed)
    model = PaliGemmaForConditionalGeneration(to_hf_config(cfg)).eval()
    with torch.no_grad():  # non-trivial norms so (1 + w) and LayerNorm scales are exercised
        for name, p in model.named_parameters():
            if "norm" in name:
                p.add_(torch.randn_like(p) * 0.1)
    model.save_pretrained(folder)
    tok = train_bpe(TEXTS, vocab_size=cfg.text.vocab_size)
    PreTrainedTokenizerFast(tokenizer_object=tok.tokenizer, bos_token="<bos>", eos_token="<eos>",
                            pad_token="<pad>", unk_token="<unk>").save_pretrained(folder)
    return model, cfg


@pytest.fixture(scope="module")
def hf_folder(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf_paligemma")
    model, cfg = save_hf_folder(folder)
    return folder, model, cfg


def test_logits_match_transformers(hf_folder):
    folder, hf_model, cfg = hf_folder
    ours, tok = load_hf_paligemma(folder)
    n_img = cfg.num_image_tokens
    rng = np.random.default_rng(0)
    b, t, n_prefix = 2, 10, 6  # bos + 5 prefix tokens, then 4 suffix tokens
    text = rng.integers(5, cfg.text.vocab_size, size=(b, t))
    text[:, 0] = tok.bos_id
    valid = np.ones((b, t), bool)
    valid[1, -2:] = False  # right padding in row 1
    text[~valid] = tok.pad_id
    suffix = np.zeros((b, t), bool)
    suffix[:, n_prefix:] = True
    pixels = rng.uniform(-1, 1, size=(b, cfg.vision.image_size, cfg.vision.image_size, 3)).astype(np.float32)

    ids = np.concatenate([np.full((b, n_img), cfg.image_token_id), text], axis=1)
    with torch.no_grad():
        ref = hf_model(
            input_ids=torch.tensor(ids), pixel_values=torch.tensor(pixels.transpose(0, 3, 1, 2)),
            attention_mask=torch.tensor(np.concatenate([np.ones((b, n_img), int), valid], axis=1)),
            token_type_ids=torch.tensor(np.concatenate([np.zeros((b, n_img), int), suffix], axis=1).astype(int)),
        ).logits[:, n_img:].numpy()
    # full float32 matmuls: JAX's default on GPUs is TF32 (max logit difference 1.8e-4 on an H200)
    with jax.default_matmul_precision("highest"):
        got = np.asarray(ours(pixels, text, valid, suffix))
    diff = np.abs(got - ref)[valid].max()
    assert diff <= 1e-4, f"max abs logit difference {diff}"
    assert np.abs(ref).max() > 1e-2  # the comparison is not trivially between zeros


def test_missing_files_give_clear_errors(hf_folder, tmp_path):
    folder, _, _ = hf_folder
    with pytest.raises(CheckpointError, match="not found"):
        load_hf_paligemma(tmp_path / "nope")
    for drop, pattern in [("config.json", "no config.json"), ("model.safetensors", "no model.safetensors"),
                          ("tokenizer.json", "no tokenizer.json")]:
        dst = tmp_path / f"without-{drop}"
        dst.mkdir()
        for f in folder.iterdir():
            if f.name != drop:
                (dst / f.name).write_bytes(f.read_bytes())
        with pytest.raises((CheckpointError, TokenizerError), match=pattern):
            load_hf_paligemma(dst)


def test_config_weight_shape_mismatch(hf_folder, tmp_path):
    folder, _, _ = hf_folder
    for f in folder.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    cfg = json.loads((tmp_path / "config.json").read_text())
    cfg["text_config"]["intermediate_size"] = 48  # weights were saved with 64
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ShapeMismatchError, match=r"mlp\.\w+_proj\.weight.*\(64, 32\).*\(48, 32\)|\(32, 64\).*\(32, 48\)"):
        load_hf_paligemma(tmp_path)


def test_rejects_other_architectures(hf_folder, tmp_path):
    folder, _, _ = hf_folder
    for f in folder.iterdir():
        (tmp_path / f.name).write_bytes(f.read_bytes())
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "llava"}))
    with pytest.raises(CheckpointError, match="not 'paligemma'"):
        load_hf_paligemma(tmp_path)
