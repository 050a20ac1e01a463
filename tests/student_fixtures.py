"""Random-init ``test``-preset student checkpoints (the :mod:`vpd.distill.vlm_checkpoint` format) for
tests of the tools that load a student; no training, so they compile and run in seconds."""

from __future__ import annotations

from pathlib import Path


RATIONALE_CORPUS = "How many red cubes are there? Explain the rationale. There is one cube. So the answer is 2."


def write_random_student(out: Path, *, corpus: str = RATIONALE_CORPUS, max_suffix: int = 12,
                         image_blind: bool = False) -> Path:
    """Write a student (its BPE trained on ``corpus``) to ``out``. ``image_blind``: the projector's
    kernel is zero, so every image gives the same image tokens (its bias) and the student's outputs
    cannot depend on the pixels."""
    import numpy as np
    import orbax.checkpoint as ocp
    from flax import nnx

    from vpd.distill import vlm_checkpoint as ck
    from vpd.distill.vlm_config import preset
    from vpd.distill.vlm_model import PaliGemma
    from vpd.distill.vlm_tokenizer import train_bpe

    tok = train_bpe([corpus] * 20, vocab_size=320)
    cfg = preset("test")
    model = PaliGemma(cfg, rngs=nnx.Rngs(0))
    if image_blind:
        model.projector.kernel.value = np.zeros_like(model.projector.kernel.value)
    ck.write_meta(out, {"model": cfg.to_dict(), "lora_rank": 0, "lora_alpha": None, "max_prefix": 32,
                        "max_suffix": max_suffix}, tok)
    mgr = ck.manager(out)
    mgr.save(0, args=ocp.args.StandardSave({"params": ck.flat_params(nnx.state(model, nnx.Param)), "opt": [],
                                            "step": 0}))
    mgr.wait_until_finished()
    mgr.close()
    return out
