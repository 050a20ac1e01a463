"""Model backends load in their dtype directly on the device (``from_pretrained(dtype=…,
device_map=…)``), so transformers' ``_keep_in_fp32_modules`` survive float16; ``auto`` is bfloat16
only on a GPU that supports it (float32 on this CPU); float16 only when asked."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from PIL import Image

from vpd.tools import load
from vpd.tools.backends._runtime import dtype_option, pick_dtype
from vpd.tools.errors import ToolError
from vpd.tools.tiny_models import make_tiny

IMAGE = Image.fromarray(np.random.RandomState(0).randint(0, 255, (40, 48, 3), dtype=np.uint8))


@pytest.fixture(scope="module")
def blip2_t5(tmp_path_factory):
    """Tiny BLIP-2 with a T5 language model: Q-Former, query tokens and T5's ``wo`` are fp32-kept."""
    return str(make_tiny("blip2_t5", tmp_path_factory.mktemp("dtype") / "blip2_t5"))


def _vqa(path: str, **opts):
    return load({"vqa": {"backend": "blip2", "model_path": path, "max_new_tokens": 4, **opts}}).backends["vqa"]


def _kept_fp32(model) -> dict[str, torch.dtype]:
    """dtype of every parameter that falls under one of the model's ``_keep_in_fp32_modules``."""
    keep = set(model._keep_in_fp32_modules or ())
    return {n: p.dtype for n, p in model.named_parameters() if keep & set(n.split("."))}


def test_pick_dtype_rules():
    assert pick_dtype("cpu", "auto") == torch.float32  # no bfloat16 guess on CPUs
    assert pick_dtype("cpu", "bfloat16") == torch.bfloat16 and pick_dtype("cpu", "float16") == torch.float16
    with pytest.raises(ToolError, match="unknown dtype"):
        pick_dtype("cpu", "fp8")
    assert dtype_option({"half": True}) == "float16" and dtype_option({"half": False}) == "float32"
    assert dtype_option({}) == "auto" and dtype_option({"dtype": "bfloat16"}) == "bfloat16"
    with pytest.raises(ToolError, match="not both"):
        dtype_option({"half": True, "dtype": "float16"})


def test_float16_keeps_transformers_fp32_modules(blip2_t5):
    be = _vqa(blip2_t5, dtype="float16")
    model = be.model
    assert {"qformer", "query_tokens", "wo"} <= set(model._keep_in_fp32_modules)
    kept = _kept_fp32(model)
    assert any(".wo." in n for n in kept) and any(n.startswith("qformer.") for n in kept)
    assert set(kept.values()) == {torch.float32}  # T5's wo, the Q-Former, the query tokens
    rest = {p.dtype for n, p in model.named_parameters() if n not in kept}
    assert rest == {torch.float16}
    assert all(p.device.type == "cpu" for p in model.parameters())
    assert isinstance(be.vqa(IMAGE, "what is this?"), str) and isinstance(be.caption(IMAGE), str)
    # what the old whole-model cast did: the kept modules would have been float16 too
    assert {p.dtype for p in copy.deepcopy(model).to(torch.float16).qformer.parameters()} == {torch.float16}


def test_bfloat16_and_auto(blip2_t5):
    bf = _vqa(blip2_t5, dtype="bfloat16")
    assert bf.dtype == torch.bfloat16
    # transformers keeps these modules fp32 only against float16's range; bfloat16 has float32's range
    assert {p.dtype for p in bf.model.language_model.parameters()} == {torch.bfloat16}
    assert isinstance(bf.vqa(IMAGE, "what is this?"), str)
    auto = _vqa(blip2_t5)
    assert auto.dtype == torch.float32 and {p.dtype for p in auto.model.parameters()} == {torch.float32}
    assert auto.effective_settings()["dtype"] == "float32" and bf.effective_settings()["dtype"] == "bfloat16"


def test_older_half_option_still_means_float16(blip2_t5):
    be = _vqa(blip2_t5, half=True)
    assert be.dtype == torch.float16 and set(_kept_fp32(be.model).values()) == {torch.float32}


@pytest.mark.parametrize("name,opts", [("groundingdino", {"checkpoint": "x", "text_encoder": "y"}),
                                       ("vpd_vlm", {"model_path": "runs/none"})])
def test_fixed_precision_backends_refuse_other_dtypes(name, opts):
    with pytest.raises(ToolError, match="float32"):
        load({"vqa" if name == "vpd_vlm" else "detect": {"backend": name, "dtype": "float16", **opts}})
