"""`vpd train --recipe vpd-paper`: LoRA rank 8 on every linear layer, batch 128 by accumulation,
8,000 steps, lr 1e-4 cosine with 1% warmup, AdamW betas (0.9, 0.98)."""

from __future__ import annotations

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from flax import nnx
from typer.testing import CliRunner

from vpd.cli import app
from vpd.distill.vlm_config import preset
from vpd.distill.vlm_lora import LoRALinear, apply_lora
from vpd.distill.vlm_model import build_model
from vpd.distill.vlm_train import RECIPES, TrainConfig, make_optimizer


def test_vpd_paper_recipe_values():
    cfg = RECIPES.get("vpd-paper")()
    assert (cfg.steps, cfg.batch * cfg.accum, cfg.lr, cfg.warmup_steps, cfg.end_lr_fraction) == (8000, 128, 1e-4, 80, 0.0)
    assert (cfg.lora_rank, cfg.lora_targets, tuple(cfg.betas)) == (8, "all", (0.9, 0.98))
    small = RECIPES.get("vpd-paper")(batch=32, steps=1000)
    assert (small.batch, small.accum, small.warmup_steps) == (32, 4, 10)  # still 128 rows an update
    assert RECIPES.get("vpd-paper")(accum=2, batch=4).accum == 2  # an explicit accum wins
    _, schedule = make_optimizer(cfg)
    assert float(schedule(80)) == pytest.approx(1e-4) and float(schedule(8000)) == pytest.approx(0.0, abs=1e-12)
    assert float(schedule(40)) == pytest.approx(0.5e-4, rel=1e-3)


def _adam(grads, b1, b2, lr, eps=1e-8):
    m = v = 0.0
    ups = []
    for t, g in enumerate(grads, start=1):
        m, v = b1 * m + (1 - b1) * g, b2 * v + (1 - b2) * g * g
        ups.append(-lr * (m / (1 - b1 ** t)) / (np.sqrt(v / (1 - b2 ** t)) + eps))
    return ups


def test_optimizer_uses_the_configured_betas():
    cfg = TrainConfig(steps=100, lr=1e-2, warmup_steps=0, end_lr_fraction=1.0, weight_decay=0.0, clip_norm=1e9,
                      betas=(0.9, 0.98))
    tx, _ = make_optimizer(cfg)
    params = {"w": jnp.zeros((3,))}
    state = tx.init(params)
    grads = [np.array([1.0, -2.0, 0.5]), np.array([0.1, 3.0, -1.0])]
    got = []
    for g in grads:
        up, state = tx.update({"w": jnp.asarray(g)}, state, params)
        got.append(np.asarray(up["w"]))
    want = _adam(grads, 0.9, 0.98, 1e-2)
    np.testing.assert_allclose(got[1], want[1], rtol=1e-5)
    default = _adam(grads, 0.9, 0.999, 1e-2)
    assert not np.allclose(default[1], want[1], rtol=1e-3)  # b2 matters at step 2: the check above can tell


def _linears(model):
    kinds = [type(x) for _, x in nnx.iter_graph(model)]
    return kinds.count(nnx.Linear), kinds.count(LoRALinear)


def test_lora_all_wraps_every_linear_layer_and_starts_identical():
    cfg = preset("test")
    n_linear = _linears(build_model(cfg, seed=1))[0]
    dec = apply_lora(build_model(cfg, seed=1), rank=8)
    assert _linears(dec)[1] == 7 * cfg.text.depth  # decoder attention + MLP only
    model = build_model(cfg, seed=1)
    rng = np.random.default_rng(0)
    s = cfg.vision.image_size
    pixels = jnp.asarray(rng.uniform(-1, 1, (1, s, s, 3)), jnp.float32)
    tokens = jnp.asarray(rng.integers(5, cfg.text.vocab_size, (1, 6)), jnp.int32)
    valid, suffix = jnp.ones((1, 6), bool), jnp.zeros((1, 6), bool).at[:, 3:].set(True)
    before = model(pixels, tokens, valid, suffix)
    apply_lora(model, rank=8, targets="all")
    assert _linears(model) == (n_linear, n_linear)  # every base Linear now sits inside a LoRALinear
    assert isinstance(model.projector, LoRALinear) and isinstance(model.vision.layers[0].fc1, LoRALinear)
    np.testing.assert_allclose(model(pixels, tokens, valid, suffix), before, atol=1e-5)  # B = 0 at init
    with pytest.raises(ValueError, match="decoder, all"):
        apply_lora(build_model(cfg, seed=1), rank=8, targets="vision")


def test_cli_vpd_paper_recipe_trains_and_reloads(shapes_dir, tmp_path):
    from tests.test_vlm_train import write_mixture
    from vpd.distill.vlm_checkpoint import load_student, read_meta

    mix = write_mixture(shapes_dir, tmp_path / "mix", n=6)
    out = tmp_path / "ckpt"
    res = CliRunner().invoke(app, ["train", "--data", str(mix), "--model", "test", "--out", str(out),
                                   "--recipe", "vpd-paper", "--steps", "2", "--batch", "4", "--accum", "2"])
    assert res.exit_code == 0, res.output
    meta = read_meta(out)
    train_cfg = meta["train"]
    assert (meta["lora_rank"], meta["lora_targets"], train_cfg["betas"], train_cfg["lr"]) == (8, "all", [0.9, 0.98], 1e-4)
    assert (train_cfg["batch"], train_cfg["accum"], train_cfg["steps"]) == (4, 2, 2)
    model, _, _ = load_student(out)
    n_linear, n_lora = _linears(model)
    assert n_linear == n_lora > 7 * model.config.text.depth  # the vision tower and projector carry adapters too
    rows = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2] and all(np.isfinite(r["loss"]) for r in rows)
