"""GroundingDINO open-vocabulary detection (the ``groundingdino-py`` package).

Options: ``checkpoint`` (a ``.pth`` with a ``"model"`` state dict, e.g. groundingdino_swint_ogc.pth),
``text_encoder`` (a local ``bert-base-uncased`` folder: the package would otherwise download it),
``config`` (a GroundingDINO ``.py`` config; default the packaged SwinT-OGC one), ``box_threshold``
(0.35), ``text_threshold`` (0.25), ``image_size`` (shorter side in pixels, default 800, longer side
capped at 1333). Runs float32 (``dtype`` may only be ``auto``/``float32``).

``detect(image, query)`` -> boxes in pixels of the image (x0, y0, x1, y1), label = the query,
highest score first, as the reference ``predict``: a box is kept when its best token score (sigmoid
over the caption's tokens) exceeds ``box_threshold`` *and* at least one token of the query itself
(not ``[CLS]``/``[SEP]``/``.``/``?``) exceeds ``text_threshold`` — the reference would label any
other box with an empty phrase. Not batchable: the package pads a batch to one size, which changes
results.

Loading reports the checkpoint's missing and unexpected keys (:attr:`GroundingDinoBackend.load_report`,
logged); any missing weight the model uses fails the load, naming the keys. Only the BERT pooler
(:data:`UNUSED_PREFIXES`: GroundingDINO reads the encoder's hidden states, never the pooled output) may
be absent.
"""

from __future__ import annotations

import contextlib
import io
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PIL import Image

from vpd.tools.backend import register_backend
from vpd.tools.backends._hf import ModelBackend
from vpd.tools.backends._runtime import resolve_weights, weights_found
from vpd.tools.errors import ToolError
from vpd.types import Box

_log = logging.getLogger(__name__)

#: State-dict key prefixes of modules GroundingDINO builds but never runs (may be missing from a checkpoint).
UNUSED_PREFIXES = ("bert.pooler.",)
#: Caption tokens that never name the object (excluded from the ``text_threshold`` test).
NON_QUERY_TOKENS = ("[CLS]", "[SEP]", "[PAD]", ".", "?")


@dataclass(frozen=True, kw_only=True)
class LoadReport:
    """What ``load_state_dict`` found: keys the model has but the checkpoint lacks (``missing``; the
    ``unused`` ones among them are harmless) and checkpoint keys the model has no place for."""

    missing: tuple[str, ...]
    unused_missing: tuple[str, ...]
    unexpected: tuple[str, ...]


def check_state_dict(model, state: dict[str, Any], source: str) -> LoadReport:
    """Load ``state`` into ``model`` and report; raise ValueError when a weight the model uses is missing."""
    try:
        missing, unexpected = model.load_state_dict(state, strict=False)
    except RuntimeError as exc:  # shape mismatches: the checkpoint is for another config
        raise ValueError(f"checkpoint {source} does not match the model: {exc}") from None
    unused = tuple(k for k in missing if k.startswith(UNUSED_PREFIXES))
    needed = [k for k in missing if not k.startswith(UNUSED_PREFIXES)]
    report = LoadReport(missing=tuple(missing), unused_missing=unused, unexpected=tuple(unexpected))
    if needed:
        shown = ", ".join(needed[:8]) + (f" … ({len(needed)} in all)" if len(needed) > 8 else "")
        raise ValueError(f"checkpoint {source} does not match the model: {len(needed)} missing weight(s) the "
                         f"model uses: {shown}" + (f"; {len(unexpected)} unexpected key(s), e.g. "
                                                    f"{', '.join(list(unexpected)[:4])}" if unexpected else ""))
    if unused or unexpected:
        _log.warning("groundingdino checkpoint %s: %d unused key(s) missing (%s), %d unexpected key(s) ignored (%s)",
                     source, len(unused), ", ".join(unused[:4]), len(unexpected), ", ".join(list(unexpected)[:4]))
    return report


def packaged_config(name: str = "GroundingDINO_SwinT_OGC.py") -> Path:
    """Path of a config shipped inside the groundingdino package."""
    import importlib.util

    spec = importlib.util.find_spec("groundingdino")
    if spec is None or not spec.submodule_search_locations:
        raise ImportError("groundingdino-py is not installed (pip install groundingdino-py)")
    return Path(list(spec.submodule_search_locations)[0]) / "config" / name


class _BertWarperV5:
    """Stand-in for the package's ``BertModelWarper`` under transformers >= 5.

    groundingdino-py 0.4.0 wraps ``BertModel`` using methods transformers 5 removed
    (``get_extended_attention_mask``, ``get_head_mask``) and calls ``BertEncoder`` with arguments it
    no longer takes. This wrapper keeps the same sub-module names (``embeddings``, ``encoder``,
    ``pooler``: checkpoint keys are unchanged) and turns GroundingDINO's 3-D text self-attention mask
    (batch, tokens, tokens) into the additive 4-D mask the v5 encoder layers accept.
    """

    @staticmethod
    def make(bert_model):
        import torch
        from torch import nn

        class BertModelWarper(nn.Module):
            def __init__(self, bert_model):
                super().__init__()
                self.config = bert_model.config
                self.embeddings = bert_model.embeddings
                self.encoder = bert_model.encoder
                self.pooler = bert_model.pooler

            def forward(self, input_ids=None, attention_mask=None, token_type_ids=None, position_ids=None, **_):
                if attention_mask is None:
                    attention_mask = torch.ones_like(input_ids)
                if token_type_ids is None:
                    token_type_ids = torch.zeros_like(input_ids)
                hidden = self.embeddings(input_ids=input_ids, position_ids=position_ids,
                                         token_type_ids=token_type_ids)
                mask = attention_mask if attention_mask.dim() == 3 else attention_mask[:, None, :].expand(
                    -1, input_ids.shape[1], -1)
                additive = (1.0 - mask[:, None].to(hidden.dtype)) * torch.finfo(hidden.dtype).min
                for layer in self.encoder.layer:
                    out = layer(hidden, attention_mask=additive)
                    hidden = out[0] if isinstance(out, tuple) else out
                return {"last_hidden_state": hidden}

        return BertModelWarper(bert_model)


def _patch_for_transformers_v5() -> None:
    import transformers
    from groundingdino.models.GroundingDINO import groundingdino as gd

    if int(transformers.__version__.split(".")[0]) >= 5 and not getattr(gd, "_vpd_patched", False):
        gd.BertModelWarper = lambda bert_model: _BertWarperV5.make(bert_model)
        gd._vpd_patched = True


def build_groundingdino_model(config: str | Path, text_encoder: str | Path, *, device: str = "cpu"):
    """Build (random-init) a GroundingDINO model from ``config`` with the local ``text_encoder``."""
    from groundingdino.models import build_model
    from groundingdino.util.slconfig import SLConfig

    _patch_for_transformers_v5()

    args = SLConfig.fromfile(str(config))
    args.device = device
    args.text_encoder_type = str(text_encoder)  # a local folder: never fetched from the hub
    with contextlib.redirect_stdout(io.StringIO()):  # the package prints while building
        model = build_model(args)
    return model


@register_backend("groundingdino")
class GroundingDinoBackend(ModelBackend):
    """GroundingDINO SwinT/SwinB (IDEA-Research)."""

    provides = frozenset({"detect"})
    max_batch = 1
    memory_class = "gpu-small"
    weight_keys = {"checkpoint": "/models/groundingdino/groundingdino_swint_ogc.pth",
                   "text_encoder": "/models/bert-base-uncased", "config": ""}
    lazy_keys = frozenset({"config"})  # default: the packaged SwinT-OGC config (resolved in _load)
    weight_kind = "any"
    needs = "groundingdino-py; checkpoint .pth + local bert-base-uncased folder"
    text_args = {"detect": "space"}  # whitespace-collapsed; case kept (the box label echoes the query)
    settings = {**ModelBackend.settings, "box_threshold": 0.35, "text_threshold": 0.25, "image_size": 800}
    key_settings = ModelBackend.key_settings | {"box_threshold", "text_threshold", "image_size"}

    def __init__(self, **options: Any) -> None:
        if options.get("half") or str(options.get("dtype", "auto")) not in ("auto", "float32"):
            raise ToolError("groundingdino runs float32 (its deformable attention is not half-safe): "
                            "leave `dtype` unset (or float32)")
        super().__init__(**{**{k: v for k, v in options.items() if k != "half"}, "dtype": "float32"})

    def _load(self) -> None:
        import torch
        from groundingdino.util.misc import clean_state_dict

        ckpt = self.paths["checkpoint"]
        text = self.paths["text_encoder"]
        if not ckpt.is_file():
            raise resolve_weights(self.name, "checkpoint", str(ckpt), kind="file") and None
        if not text.is_dir():
            resolve_weights(self.name, "text_encoder", str(text), kind="dir")
        config = self.options.get("config") or packaged_config()
        config = resolve_weights(self.name, "config", config, kind="file")
        self.paths["config"] = config
        model = build_groundingdino_model(config, text, device=self.device)
        state = torch.load(ckpt, map_location="cpu", weights_only=False)
        state = state.get("model", state) if isinstance(state, dict) else state
        self.load_report = check_state_dict(model, clean_state_dict(state), f"{ckpt} (config {config})")
        self.model = model.to(self.device).eval()  # fp32: its deformable attention is not half-safe on CPU
        self.box_threshold = self.setting("box_threshold")
        self.text_threshold = self.setting("text_threshold")
        self.image_size = self.setting("image_size")

    @classmethod
    def weights_status(cls, options: dict[str, Any] | None = None) -> str:
        opts = options or {}
        keys = [k for k in cls.weight_keys if k != "config" or opts.get("config")]
        return weights_found(cls.name, {k: opts.get(k, cls.weight_keys[k]) for k in keys},
                             {"checkpoint": "file", "text_encoder": "dir", "config": "file"})

    def _tensor(self, image: Image.Image):
        import torch
        import torchvision.transforms.functional as F

        w, h = image.size
        scale = self.image_size / min(w, h)
        if max(w, h) * scale > 1333:
            scale = 1333 / max(w, h)
        size = (max(1, round(h * scale)), max(1, round(w * scale)))
        t = F.to_tensor(image.resize((size[1], size[0]), Image.BILINEAR))
        return F.normalize(t, [0.485, 0.456, 0.406], [0.229, 0.224, 0.225]).to(self.device, dtype=torch.float32)

    def query_positions(self, caption: str) -> list[int]:
        """Indices of ``caption``'s tokens that belong to the query (not [CLS]/[SEP]/punctuation), as
        positions along ``pred_logits``' text axis."""
        tok = self.model.tokenizer
        ids = tok(caption)["input_ids"][: int(getattr(self.model, "max_text_len", 256))]
        skip = set(tok.convert_tokens_to_ids(list(NON_QUERY_TOKENS)))
        return [i for i, t in enumerate(ids) if t not in skip]

    def detect(self, image: Image.Image, query: str) -> list[Box]:
        import torch

        query = " ".join(str(query).split()) or "object"
        caption = query.lower().strip()
        caption = caption if caption.endswith(".") else caption + "."
        with torch.inference_mode():
            out = self.model(self._tensor(image)[None], captions=[caption])
        logits = out["pred_logits"].float().sigmoid()[0]  # (queries, 256 text tokens)
        boxes = out["pred_boxes"].float()[0]  # (queries, 4) cx, cy, w, h in [0, 1]
        scores = logits.max(dim=1).values
        positions = self.query_positions(caption)
        if not positions:
            raise ToolError(f"groundingdino: query {query!r} has no word tokens")
        phrase = logits[:, positions].max(dim=1).values  # best score of the query's own tokens
        keep = (scores > self.box_threshold) & (phrase > self.text_threshold)
        w, h = image.size
        result = []
        for (cx, cy, bw, bh), s in zip(boxes[keep].tolist(), scores[keep].tolist()):
            x0, y0 = max(0.0, (cx - bw / 2) * w), max(0.0, (cy - bh / 2) * h)
            x1, y1 = min(float(w), (cx + bw / 2) * w), min(float(h), (cy + bh / 2) * h)
            result.append(Box(x0=x0, y0=y0, x1=max(x0, x1), y1=max(y0, y1), score=float(s), label=query))
        return sorted(result, key=lambda b: -b.score)
