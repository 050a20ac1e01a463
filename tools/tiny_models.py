"""Tiny randomly-initialised checkpoints for the transformers / GroundingDINO backends.

They prove loading, pre/post-processing, batching and result shapes offline (no model hub): each
is built from a config with a few thousand parameters, with a tokenizer built from an in-memory
vocabulary, and saved with ``save_pretrained`` to a folder the real backend then loads exactly as
it loads a downloaded checkpoint. Their answers are meaningless; their *formats* are real.

>>> path = make_tiny("owlv2", "/tmp/tiny-owlv2")          # doctest: +SKIP
>>> load({"detect": {"backend": "owlv2", "model_path": str(path)}})   # doctest: +SKIP

CLI: ``vpd tools make-tiny owlv2 --out /tmp/tiny-owlv2``.
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Callable

IMAGE_SIZE = 32  # pixels: the tiny vision towers see 32x32 inputs
_WORDS = ("a", "an", "the", "of", "photo", "what", "is", "this", "color", "red", "blue", "green",
          "cat", "dog", "car", "person", "cube", "sphere", "how", "many", "are", "there", "yes", "no",
          "answer", "caption", "en", "question")


def _torch_seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)


# -- tokenizers (built offline from in-memory vocabularies) --------------------------------------
def _clip_tokenizer():
    from transformers import CLIPTokenizer

    specials = ["<|startoftext|>", "<|endoftext|>"]
    chars = list(string.ascii_lowercase + string.digits + ".,?!'-")
    vocab: dict[str, int] = {}
    for tok in chars + [c + "</w>" for c in chars] + [w + "</w>" for w in _WORDS]:
        vocab.setdefault(tok, len(vocab))
    merges: list[tuple[str, str]] = []
    for w in _WORDS:  # merge chains so whole words become one token
        cur = list(w[:-1]) + [w[-1] + "</w>"]
        while len(cur) > 1:
            a, b = cur[0], cur[1]
            merges.append((a, b))
            vocab.setdefault(a + b, len(vocab))
            cur = [a + b] + cur[2:]
    for tok in specials:  # specials last, as in CLIP (OWL masks queries whose first id is 0)
        vocab.setdefault(tok, len(vocab))
    return CLIPTokenizer(vocab=vocab, merges=merges, model_max_length=16)


def _bert_tokenizer():
    from transformers import BertTokenizer

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    chars = list(string.ascii_lowercase + string.digits + ".,?!'-")
    vocab: dict[str, int] = {}
    for tok in specials + list(_WORDS) + chars + ["##" + c for c in chars]:
        vocab.setdefault(tok, len(vocab))
    return BertTokenizer(vocab=vocab, model_max_length=64)


def _gpt2_tokenizer():
    from transformers import GPT2Tokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    vocab = {"<|endoftext|>": 0, "<pad>": 1}
    for ch in bytes_to_unicode().values():
        vocab.setdefault(ch, len(vocab))
    return GPT2Tokenizer(vocab=vocab, merges=[], pad_token="<pad>", model_max_length=64)


def _gemma_tokenizer(extra_specials: tuple[str, ...] = ()):
    from transformers import GemmaTokenizer

    specials = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", *extra_specials]
    chars = list(string.ascii_letters + string.digits + ".,?!'-\n") + ["\u2581"]
    vocab: dict[str, int] = {}
    for tok in specials + chars + ["\u2581" + w for w in _WORDS]:
        vocab.setdefault(tok, len(vocab))
    tok = GemmaTokenizer(vocab=vocab, merges=[], model_max_length=64)
    if extra_specials:
        tok.add_special_tokens({"additional_special_tokens": list(extra_specials)})
    return tok


def _vision(**kw):
    base = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                image_size=IMAGE_SIZE, patch_size=8)
    base.update(kw)
    return base


def _text(vocab_size: int, **kw):
    base = dict(hidden_size=32, intermediate_size=37, num_hidden_layers=2, num_attention_heads=4,
                vocab_size=vocab_size, max_position_embeddings=64)
    base.update(kw)
    return base


def _clip_text(tok) -> dict:
    ids = tok.convert_tokens_to_ids(["<|startoftext|>", "<|endoftext|>"])
    return _text(len(tok), max_position_embeddings=16, bos_token_id=ids[0], eos_token_id=ids[1],
                 pad_token_id=ids[1])


def _spread(model, std: float = 0.3):
    """Re-draw every weight matrix from N(0, std) so a tiny random model's outputs depend on its
    inputs (with the default 0.02 init, generations are the same for every image and prompt)."""
    import torch

    with torch.no_grad():
        for prm in model.parameters():
            if prm.dim() >= 2:
                prm.normal_(0.0, std)
    return model


# -- builders ---------------------------------------------------------------------------------
def _owl(out: Path, v2: bool) -> Path:
    from transformers import (Owlv2Config, Owlv2ForObjectDetection, Owlv2ImageProcessor, Owlv2Processor,
                              OwlViTConfig, OwlViTForObjectDetection, OwlViTImageProcessor, OwlViTProcessor)

    tok = _clip_tokenizer()
    size = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    Cfg, Model = (Owlv2Config, Owlv2ForObjectDetection) if v2 else (OwlViTConfig, OwlViTForObjectDetection)
    cfg = Cfg(text_config=_clip_text(tok),
              vision_config=_vision(), projection_dim=32)
    model = Model(cfg).eval()
    import torch

    with torch.no_grad():  # calm the random class head so scores spread around 0.5 (thresholds testable)
        for prm in model.class_head.parameters():
            prm.mul_(0.02)
    if v2:
        proc = Owlv2Processor(image_processor=Owlv2ImageProcessor(size=size), tokenizer=tok)
    else:
        proc = OwlViTProcessor(image_processor=OwlViTImageProcessor(size=size, crop_size=size), tokenizer=tok)
    model.save_pretrained(out)
    proc.save_pretrained(out)
    return out


def _clip(out: Path, projection_dim: int = 32) -> Path:
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel, CLIPProcessor

    tok = _clip_tokenizer()
    size = {"shortest_edge": IMAGE_SIZE}
    cfg = CLIPConfig(text_config=_clip_text(tok),
                     vision_config=_vision(), projection_dim=projection_dim)
    CLIPModel(cfg).eval().save_pretrained(out)
    CLIPProcessor(image_processor=CLIPImageProcessor(size=size, crop_size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
                  tokenizer=tok).save_pretrained(out)
    return out


def _siglip(out: Path) -> Path:
    from transformers import SiglipConfig, SiglipImageProcessor, SiglipModel, SiglipProcessor

    tok = _gemma_tokenizer()
    cfg = SiglipConfig(text_config=_text(len(tok), max_position_embeddings=16, bos_token_id=tok.bos_token_id,
                                         eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id),
                       vision_config=_vision())
    SiglipModel(cfg).eval().save_pretrained(out)
    SiglipProcessor(image_processor=SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
                    tokenizer=tok).save_pretrained(out)
    return out


def _blip(out: Path, task: str) -> Path:
    from transformers import (BlipConfig, BlipForConditionalGeneration, BlipForQuestionAnswering,
                              BlipImageProcessor, BlipProcessor)

    tok = _bert_tokenizer()
    cfg = BlipConfig(text_config=_text(len(tok), bos_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id,
                                       pad_token_id=tok.pad_token_id, eos_token_id=tok.sep_token_id),
                     vision_config=_vision(), projection_dim=32, image_text_hidden_size=32)
    Model = BlipForQuestionAnswering if task == "vqa" else BlipForConditionalGeneration
    _spread(Model(cfg)).eval().save_pretrained(out)
    BlipProcessor(image_processor=BlipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
                  tokenizer=tok).save_pretrained(out)
    return out


def _build_blip2(out: Path, text_config: Callable[[int], dict]) -> Path:
    """A tiny BLIP-2 (ViT + Q-Former + the language model ``text_config(vocab_size)``) and its processor."""
    from transformers import Blip2Config, Blip2ForConditionalGeneration, Blip2Processor, BlipImageProcessor

    tok = _gpt2_tokenizer()
    tok.add_special_tokens({"additional_special_tokens": ["<image>"]})
    n_query = 4
    cfg = Blip2Config(
        vision_config=_vision(),
        qformer_config=dict(hidden_size=32, num_hidden_layers=2, num_attention_heads=4, intermediate_size=37,
                            encoder_hidden_size=32, vocab_size=64, max_position_embeddings=64),
        text_config=text_config(len(tok)),
        num_query_tokens=n_query, image_token_index=tok.convert_tokens_to_ids("<image>"))
    _spread(Blip2ForConditionalGeneration(cfg)).eval().save_pretrained(out)
    Blip2Processor(image_processor=BlipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE}),
                   tokenizer=tok, num_query_tokens=n_query).save_pretrained(out)
    return out


def _blip2(out: Path) -> Path:
    """BLIP-2 with an OPT (decoder-only) language model."""
    return _build_blip2(out, lambda vocab: dict(
        model_type="opt", hidden_size=32, ffn_dim=37, num_hidden_layers=2, num_attention_heads=4,
        vocab_size=vocab, max_position_embeddings=128, word_embed_proj_dim=32,
        bos_token_id=0, eos_token_id=0, pad_token_id=1))


def _blip2_t5(out: Path) -> Path:
    """BLIP-2 with a T5 (encoder-decoder) language model, as blip2-flan-t5-xxl: T5's ``wo`` and the
    Q-Former are transformers' ``_keep_in_fp32_modules``."""
    return _build_blip2(out, lambda vocab: dict(
        model_type="t5", d_model=32, d_kv=8, d_ff=37, num_layers=2, num_decoder_layers=2, num_heads=4,
        vocab_size=vocab, feed_forward_proj="gated-gelu", pad_token_id=1, eos_token_id=0,
        decoder_start_token_id=1, tie_word_embeddings=False))


def _paligemma(out: Path) -> Path:
    from transformers import (PaliGemmaConfig, PaliGemmaForConditionalGeneration, PaliGemmaProcessor,
                              SiglipImageProcessor)

    tok = _gemma_tokenizer(("<image>",))
    image_token = tok.convert_tokens_to_ids("<image>")
    vision = _vision(projection_dim=32)
    cfg = PaliGemmaConfig(
        vision_config=dict(model_type="siglip_vision_model", **vision),
        text_config=dict(model_type="gemma", hidden_size=32, intermediate_size=37, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=1, head_dim=8, vocab_size=len(tok),
                         max_position_embeddings=128, pad_token_id=tok.pad_token_id,
                         bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id),
        image_token_index=image_token, projection_dim=32, hidden_size=32)
    _spread(PaliGemmaForConditionalGeneration(cfg)).eval().save_pretrained(out)
    proc = PaliGemmaProcessor(image_processor=SiglipImageProcessor(size={"height": IMAGE_SIZE, "width": IMAGE_SIZE},
                                                                   image_seq_length=(IMAGE_SIZE // 8) ** 2),
                              tokenizer=tok)
    proc.save_pretrained(out)
    return out


def _depth(out: Path, kind: str) -> Path:
    from transformers import (DepthAnythingConfig, DepthAnythingForDepthEstimation, DPTConfig,
                              DPTForDepthEstimation, DPTImageProcessor)

    size = {"height": IMAGE_SIZE, "width": IMAGE_SIZE}
    if kind == "depth_anything":
        backbone = dict(model_type="dinov2", hidden_size=32, num_hidden_layers=4, num_attention_heads=4,
                        intermediate_size=37, image_size=IMAGE_SIZE, patch_size=8,
                        out_features=["stage1", "stage2", "stage3", "stage4"], reshape_hidden_states=False)
        cfg = DepthAnythingConfig(backbone_config=backbone, reassemble_hidden_size=32, patch_size=8,
                                  neck_hidden_sizes=[8, 16, 16, 16], fusion_hidden_size=16,
                                  head_hidden_size=8)
        model = DepthAnythingForDepthEstimation(cfg)
    else:
        cfg = DPTConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=4, intermediate_size=37,
                        image_size=IMAGE_SIZE, patch_size=8, backbone_out_indices=[0, 1, 2, 3],
                        neck_hidden_sizes=[8, 16, 16, 16], fusion_hidden_size=16, head_in_index=-1)
        model = DPTForDepthEstimation(cfg)
    model.eval().save_pretrained(out)
    DPTImageProcessor(size=size, keep_aspect_ratio=False, ensure_multiple_of=8).save_pretrained(out)
    return out


def _bert(out: Path) -> Path:
    """A tiny BERT text encoder folder (GroundingDINO's ``text_encoder``)."""
    from transformers import BertConfig, BertModel

    tok = _bert_tokenizer()
    cfg = BertConfig(vocab_size=len(tok), hidden_size=32, num_hidden_layers=1, num_attention_heads=4,
                     intermediate_size=37, max_position_embeddings=256, pad_token_id=tok.pad_token_id)
    BertModel(cfg).eval().save_pretrained(out)
    tok.save_pretrained(out)
    return out


GDINO_TINY_CONFIG = """\
# A tiny GroundingDINO config (Swin-T backbone, 1 encoder/decoder layer, 30 queries).
batch_size = 1
modelname = "groundingdino"
backbone = "swin_T_224_1k"
position_embedding = "sine"
pe_temperatureH = 20
pe_temperatureW = 20
return_interm_indices = [1, 2, 3]
backbone_freeze_keywords = None
enc_layers = 1
dec_layers = 1
pre_norm = False
dim_feedforward = 64
hidden_dim = 256
dropout = 0.0
nheads = 8
num_queries = 30
query_dim = 4
num_patterns = 0
num_feature_levels = 4
enc_n_points = 4
dec_n_points = 4
two_stage_type = "standard"
two_stage_bbox_embed_share = False
two_stage_class_embed_share = False
transformer_activation = "relu"
dec_pred_bbox_embed_share = True
dn_box_noise_scale = 1.0
dn_label_noise_ratio = 0.5
dn_label_coef = 1.0
dn_bbox_coef = 1.0
embed_init_tgt = True
dn_labelbook_size = 2000
max_text_len = 256
text_encoder_type = "bert-base-uncased"
use_text_enhancer = True
use_fusion_layer = True
use_checkpoint = False
use_transformer_ckpt = False
use_text_cross_attention = True
text_dropout = 0.0
fusion_dropout = 0.0
fusion_droppath = 0.1
sub_sentence_present = True
"""


def _groundingdino(out: Path) -> Path:
    """``out/config.py``, ``out/checkpoint.pth`` and ``out/text_encoder/`` (a tiny BERT)."""
    import torch

    out.mkdir(parents=True, exist_ok=True)
    text_dir = _bert(out / "text_encoder")
    (out / "config.py").write_text(GDINO_TINY_CONFIG)
    from vpd.tools.backends.groundingdino import build_groundingdino_model

    model = build_groundingdino_model(out / "config.py", text_dir, device="cpu")
    torch.save({"model": model.state_dict()}, out / "checkpoint.pth")
    return out


TINY_BUILDERS: dict[str, Callable[[Path], Path]] = {
    "owlv2": lambda p: _owl(p, True),
    "owlvit": lambda p: _owl(p, False),
    "clip": _clip,
    "clip512": lambda p: _clip(p, projection_dim=512),  # YOLO-World's text-embedding width
    "siglip": _siglip,
    "blip_vqa": lambda p: _blip(p, "vqa"),
    "blip_caption": lambda p: _blip(p, "caption"),
    "blip2": _blip2,
    "blip2_t5": _blip2_t5,
    "paligemma": _paligemma,
    "depth_anything": lambda p: _depth(p, "depth_anything"),
    "dpt": lambda p: _depth(p, "dpt"),
    "bert": _bert,
    "groundingdino": _groundingdino,
}


def make_tiny(kind: str, out: str | Path, *, seed: int = 0) -> Path:
    """Build the tiny random-init checkpoint ``kind`` (see :data:`TINY_BUILDERS`) into folder ``out``."""
    if kind not in TINY_BUILDERS:
        raise ValueError(f"unknown tiny model {kind!r} (known: {', '.join(sorted(TINY_BUILDERS))})")
    _torch_seed(seed)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    return TINY_BUILDERS[kind](out)
