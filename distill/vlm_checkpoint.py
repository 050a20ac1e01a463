"""Student checkpoint folders: ``config.json`` + ``tokenizer.json`` + orbax ``state/<step>/``.

``config.json`` holds ``{"model": VLMConfig dict, "lora_rank", "lora_alpha", "lora_targets", "train": TrainConfig
dict, "max_prefix", "max_suffix", "format": "vpd-student-1"}``. The orbax state is
``{"params": {"a/b/0/kernel": array, …}, "opt": [leaves of the optimizer state], "step": int}``;
parameter names are slash-joined paths of the model's pure dict, so the files are readable
without our code.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp
from flax import nnx

from vpd.distill.vlm_config import VLMConfig
from vpd.distill.vlm_lora import apply_lora
from vpd.distill.vlm_model import PaliGemma
from vpd.distill.vlm_tokenizer import VLMTokenizer, load_tokenizer

FORMAT = "vpd-student-1"


class StudentCheckpointError(ValueError):
    """A student checkpoint folder is missing a file or has no saved state."""


def flat_params(state: nnx.State) -> dict[str, Any]:
    """``{"layers/0/self_attn/q_proj/kernel": array, …}`` of a params state."""
    flat = jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(state))[0]
    return {"/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path): v for path, v in flat}


def fill_params(state: nnx.State, flat: dict[str, Any]) -> None:
    """Put ``flat`` (as from :func:`flat_params`) into ``state`` in place; raises on missing names."""
    pure = nnx.to_pure_dict(state)

    def get(path, _):
        name = "/".join(str(getattr(k, "key", getattr(k, "idx", k))) for k in path)
        if name not in flat:
            raise StudentCheckpointError(f"checkpoint has no parameter {name!r}")
        return flat[name]

    nnx.replace_by_pure_dict(state, jax.tree_util.tree_map_with_path(get, pure))


def is_student_checkpoint(folder: str | Path) -> bool:
    path = Path(folder) / "config.json"
    if not path.is_file():
        return False
    try:
        return json.loads(path.read_text()).get("format") == FORMAT
    except (json.JSONDecodeError, AttributeError):
        return False


def write_meta(folder: Path, meta: dict, tokenizer: VLMTokenizer) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "config.json").write_text(json.dumps({"format": FORMAT, **meta}, indent=2))
    tokenizer.save(folder)


def read_meta(folder: str | Path) -> dict:
    path = Path(folder) / "config.json"
    if not path.is_file():
        raise StudentCheckpointError(f"no config.json in {folder} (not a student checkpoint; train one with `vpd train`)")
    meta = json.loads(path.read_text())
    if meta.get("format") != FORMAT:
        raise StudentCheckpointError(f"{path} is not a vpd student checkpoint (format {meta.get('format')!r})")
    return meta


def manager(folder: str | Path, max_to_keep: int = 2) -> ocp.CheckpointManager:
    return ocp.CheckpointManager(Path(folder).absolute() / "state",
                                 options=ocp.CheckpointManagerOptions(max_to_keep=max_to_keep, create=True))


def restore_state(folder: str | Path, target: dict | None = None, step: int | None = None) -> tuple[int, dict]:
    """(step, saved tree) of the latest (or given) step; ``target`` gives structure and shardings."""
    mgr = manager(folder)
    step = mgr.latest_step() if step is None else step
    if step is None:
        raise StudentCheckpointError(f"no saved state under {Path(folder) / 'state'}")
    args = ocp.args.StandardRestore(target) if target is not None else ocp.args.StandardRestore()
    tree = mgr.restore(step, args=args)
    mgr.close()
    return step, tree


def build_student(meta: dict, seed: int = 0) -> PaliGemma:
    """The model (with LoRA wrappers if the run used them) described by a checkpoint's meta."""
    model = PaliGemma(VLMConfig.from_dict(meta["model"]), rngs=nnx.Rngs(seed))
    if meta.get("lora_rank", 0) > 0:
        apply_lora(model, meta["lora_rank"], meta.get("lora_alpha"), targets=meta.get("lora_targets", "decoder"))
    return model


def load_student(folder: str | Path) -> tuple[PaliGemma, VLMTokenizer, dict]:
    """Model with the latest saved parameters, its tokenizer and the checkpoint meta."""
    meta = read_meta(folder)
    tokenizer = load_tokenizer(folder)
    model = build_student(meta)
    graphdef, params, rest = nnx.split(model, nnx.Param, ...)
    _, tree = restore_state(folder)
    fill_params(params, {k: np.asarray(v) for k, v in tree["params"].items()})
    return nnx.merge(graphdef, params, rest), tokenizer, meta
