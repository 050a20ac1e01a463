"""Training parity: the same imported weights, the same batch, 5 AdamW steps in our trainer's jitted
update and in transformers' PyTorch PaliGemma (float32, same hyper-parameters) give the same losses.

Matmuls are pinned to full float32 (``jax.default_matmul_precision("highest")``): JAX's default on
GPUs is TF32, which alone moves logits by ~1e-4 (measured on an H200).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import jax  # noqa: E402
import torch  # noqa: E402

from test_vlm_import import save_hf_folder  # noqa: E402
from vpd.distill.vlm_import import load_hf_paligemma  # noqa: E402
from vpd.distill.vlm_train import Trainer, TrainConfig  # noqa: E402

STEPS = 5
LR = 1e-3
#: Largest |loss_ours - loss_torch| allowed at any of the 5 steps (nats/token), about 20x what was
#: measured on a 2-core CPU (2.4e-6, losses 5.757 -> 5.479). Step 0 is forward parity (float32
#: round-off); later steps add Adam's normalised updates of round-off-sized gradient differences.
LOSS_ATOL = 5e-5


def parity_config(**overrides) -> TrainConfig:
    """Our trainer configured as plain AdamW: constant lr, no clipping, no weight decay."""
    base = dict(steps=STEPS, batch=2, accum=1, lr=LR, warmup_steps=0, end_lr_fraction=1.0, weight_decay=0.0,
                clip_norm=1e9, bf16=False, max_suffix=8)
    return TrainConfig(**{**base, **overrides})


def make_batch(cfg, tok, seed: int = 0) -> dict[str, np.ndarray]:
    """Two rows of bos + prefix + suffix tokens (row 1 right-padded), random pixels, weights 1 and 0.5."""
    rng = np.random.default_rng(seed)
    b, t, n_prefix = 2, 12, 6
    tokens = rng.integers(5, cfg.text.vocab_size, size=(b, t)).astype(np.int32)
    tokens[:, 0] = tok.bos_id
    valid = np.ones((b, t), bool)
    valid[1, -3:] = False
    tokens[~valid] = tok.pad_id
    suffix = np.zeros((b, t), bool)
    suffix[:, n_prefix:] = True
    pixels = rng.uniform(-1, 1, size=(b, cfg.vision.image_size, cfg.vision.image_size, 3)).astype(np.float32)
    return {"pixels": pixels, "tokens": tokens, "valid": valid, "suffix": suffix,
            "weight": np.asarray([1.0, 0.5], np.float32)}


def torch_losses(hf_model, cfg, batch, steps: int, lr: float) -> list[float]:
    """``steps`` AdamW updates of ``hf_model`` on ``batch`` with our loss (per-example mean suffix NLL,
    weighted mean over rows); returns the loss before each update."""
    n_img = cfg.num_image_tokens
    b = batch["tokens"].shape[0]
    ids = torch.tensor(np.concatenate([np.full((b, n_img), cfg.image_token_id), batch["tokens"]], axis=1))
    attn = torch.tensor(np.concatenate([np.ones((b, n_img), int), batch["valid"].astype(int)], axis=1))
    types = torch.tensor(np.concatenate([np.zeros((b, n_img), int), batch["suffix"].astype(int)], axis=1))
    pixels = torch.tensor(batch["pixels"].transpose(0, 3, 1, 2))
    targets = torch.tensor(batch["tokens"][:, 1:]).long()
    mask = torch.tensor((batch["suffix"] & batch["valid"])[:, 1:]).float()
    weight = torch.tensor(batch["weight"])
    hf_model.eval()  # no dropout; gradients still flow
    opt = torch.optim.AdamW(hf_model.parameters(), lr=lr, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)
    losses = []
    for _ in range(steps):
        logits = hf_model(input_ids=ids, pixel_values=pixels, attention_mask=attn, token_type_ids=types).logits
        logp = torch.log_softmax(logits[:, n_img:-1].float(), dim=-1)
        nll = -logp.gather(-1, targets[..., None])[..., 0]
        per_example = (nll * mask).sum(-1) / mask.sum(-1).clamp(min=1.0)
        loss = (weight * per_example).sum() / weight.sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(float(loss.detach()))
    return losses


def our_losses(folder, batch, tcfg: TrainConfig) -> list[float]:
    model, _ = load_hf_paligemma(folder)
    trainer = Trainer(model, tcfg)
    return [trainer.step(batch)["loss"] for _ in range(tcfg.steps)]


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    folder = tmp_path_factory.mktemp("hf_parity")
    hf_model, cfg = save_hf_folder(folder, seed=1)
    _, tok = load_hf_paligemma(folder)
    return folder, hf_model, cfg, make_batch(cfg, tok)


def test_five_adamw_steps_match_transformers(setup):
    folder, hf_model, cfg, batch = setup
    torch.manual_seed(0)
    ref = torch_losses(hf_model, cfg, batch, STEPS, LR)
    with jax.default_matmul_precision("highest"):
        got = our_losses(folder, batch, parity_config())
    diff = np.abs(np.asarray(got) - np.asarray(ref))
    assert diff.max() <= LOSS_ATOL, f"ours {got} vs torch {ref}: max diff {diff.max():.2e}"
    assert ref[-1] < ref[0] - 0.1  # the updates did something: the loss fell
    assert abs(got[0] - ref[0]) <= 1e-5  # step 0 is pure forward parity
