"""Instruction tuning of the student on a ``vpd mix`` mixture (``DS/train.jsonl``).

* loss: next-token cross-entropy on the suffix only (answer / rationale + ``<eos>``), averaged
  per example, then a weighted mean over the batch with the mixture's ``weight`` field; only the
  (at most ``max_suffix``) positions that predict a suffix token get vocabulary logits;
* speed: one jitted update (forward, backward, optimizer) with donated state, and glibc told to
  keep freed memory (:mod:`vpd.distill.vlm_host_memory`) so the step's ~200 MiB scratch block is
  not page-faulted in again every step;
* optax AdamW (decay on matrices only) with linear warmup + cosine decay, global-norm clipping;
* gradient accumulation (``accum`` micro-batches of ``batch`` rows, one update), bf16 compute
  option (float32 master weights), optional LoRA (:mod:`vpd.distill.vlm_lora`);
* a ``(data, fsdp)`` mesh (:mod:`vpd.distill.vlm_sharding`);
* orbax checkpoints every ``ckpt_every`` steps; the data order is a pure function of
  ``(seed, step)``, so a resumed run continues the same loss curve;
* ``metrics.jsonl`` (step, loss, lr, tokens/s, examples/s) and ``loss.png`` in the output folder.

Recipes are small config functions (:data:`RECIPES`): ``default``, ``smoke`` (a handful of
examples and steps, for tests and CI) and ``vpd-paper`` (VPD's PaLI-X recipe).
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any, Callable

import jax
import jax.numpy as jnp
import numpy as np
import optax
from flax import nnx

from vpd.distill import vlm_checkpoint as ckpt
from vpd.distill.vlm_config import preset as get_preset, PRESETS
from vpd.distill.vlm_host_memory import keep_freed_host_memory
from vpd.distill.vlm_lora import apply_lora, trainable_filter
from vpd.distill.vlm_model import PaliGemma, count_params
from vpd.distill.vlm_preprocess import encode_example, normalize, resize_uint8, shortening_counts
from vpd.distill.vlm_sharding import MeshSpec, global_batch, make_mesh, tree_shardings
from vpd.distill.vlm_tokenizer import VLMTokenizer, train_bpe
from vpd.registry import Registry

_FIELDS = ("id", "image", "prefix", "suffix")


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Hyper-parameters. ``batch`` is per micro-batch; an update sees ``batch * accum`` rows."""

    steps: int = 1000
    batch: int = 16
    accum: int = 1
    lr: float = 1e-3
    warmup_steps: int = 50
    end_lr_fraction: float = 0.05
    weight_decay: float = 1e-4
    clip_norm: float = 1.0
    bf16: bool = False
    lora_rank: int = 0
    lora_alpha: float | None = None
    lora_targets: str = "decoder"  # decoder | all (every linear layer); vpd.distill.vlm_lora.LORA_TARGETS
    betas: tuple[float, float] = (0.9, 0.999)  # AdamW (b1, b2)
    mesh: str = ""
    seed: int = 0
    max_prefix: int = 64
    max_suffix: int = 96
    max_examples: int | None = None
    log_every: int = 1
    ckpt_every: int = 200
    tokenizer_vocab: int | None = None
    #: > 0: the preset's new tokenizer gets this many PaliGemma location tokens (``<loc0000>``…).
    loc_bins: int = 0
    #: weight of the dense per-image-token loss (:mod:`vpd.distill.grid_targets`) on records with a
    #: ``scene``; needs a model with ``vision.grid_head`` (pretraining only).
    grid_weight: float = 0.0
    #: a preset with a grid head gets the four box groups too (``y0, x0, y1, x1`` at ``loc_bins`` bins,
    #: :func:`vpd.distill.grid_targets.head_width`): the encoder learns where each object is.
    grid_boxes: bool = False
    #: LSKD rows (task ``lskd``) get fresh region ids each time they are batched (:mod:`vpd.distill.region_shuffle`).
    shuffle_regions: bool = True

    def __post_init__(self) -> None:  # JSON (a resumed run's config.json) gives a list; jit needs it hashable
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


RECIPES: Registry[Callable[..., TrainConfig]] = Registry("training recipe")


@RECIPES.register("default")
def default_recipe(**overrides: Any) -> TrainConfig:
    """The tiny student on a shapes-world mixture: 1000 steps of batch 16, lr 1e-3."""
    return TrainConfig(**overrides)


@RECIPES.register("smoke")
def smoke_recipe(**overrides: Any) -> TrainConfig:
    """Everything cut down (16 examples, 4 steps, short sequences) so the recipe runs in a test."""
    base = dict(steps=4, batch=4, lr=3e-3, warmup_steps=1, max_examples=16, max_prefix=40, max_suffix=40,
                ckpt_every=2)
    base.update(overrides)
    return TrainConfig(**base)


@RECIPES.register("vpd-paper")
def vpd_paper_recipe(**overrides: Any) -> TrainConfig:
    """VPD (Hu et al., CVPR 2024): LoRA rank 8 on every linear layer, 8,000 steps of batch 128 (micro-
    batches of ``batch`` rows, default 16, accumulated to 128), lr 1e-4 with 1% linear warmup then
    cosine decay to 0, AdamW betas (0.9, 0.98)."""
    steps = int(overrides.pop("steps", 8000))
    batch = int(overrides.pop("batch", 16))
    accum = int(overrides.pop("accum", max(1, 128 // batch)))
    base = dict(steps=steps, batch=batch, accum=accum, lr=1e-4, warmup_steps=max(1, round(0.01 * steps)),
                end_lr_fraction=0.0, betas=(0.9, 0.98), lora_rank=8, lora_targets="all")
    base.update(overrides)
    return TrainConfig(**base)


# ---------------------------------------------------------------- data
@dataclass(frozen=True, kw_only=True)
class MixtureData:
    """A tokenized mixture held in memory; images resized once (uint8) and shared between tasks."""

    ids: list[str]
    tasks: list[str]
    images: np.ndarray  # [I, S, S, 3] uint8
    image_index: np.ndarray  # [N]
    tokens: np.ndarray  # [N, T] int32
    valid: np.ndarray  # [N, T] bool
    suffix: np.ndarray  # [N, T] bool
    weight: np.ndarray  # [N] float32
    problems: list[dict] = field(default_factory=list)
    truncated: int = 0
    #: how targets longer than ``max_suffix`` were shortened (answers are never cut; see target_shorten)
    shortening: dict = field(default_factory=dict)
    grid: np.ndarray | None = None  # [I, cells, groups] int32 dense targets per image (grid_targets)

    def __len__(self) -> int:
        return len(self.ids)

    def batch(self, rows: np.ndarray) -> dict[str, np.ndarray]:
        out = {"pixels": normalize(self.images[self.image_index[rows]]), "tokens": self.tokens[rows],
               "valid": self.valid[rows], "suffix": self.suffix[rows], "weight": self.weight[rows]}
        if self.grid is not None:
            out["grid"] = self.grid[self.image_index[rows]]
        return out


def read_mixture(path: str | Path, max_examples: int | None = None) -> tuple[list[dict], list[dict]]:
    """Records of a mixture file (``DS/train.jsonl`` or the file itself) and the problems found."""
    path = Path(path)
    file = path / "train.jsonl" if path.is_dir() else path
    if not file.is_file():
        raise FileNotFoundError(f"no mixture file at {file} (make one with `vpd mix … --out DS`)")
    records, problems = [], []
    with file.open(encoding="utf-8", errors="replace") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
                missing = [k for k in _FIELDS if not isinstance(rec.get(k), str) or (k != "suffix" and not rec[k])]
                if missing:
                    raise ValueError(f"missing or non-text field(s) {missing}")
            except (json.JSONDecodeError, ValueError, AttributeError) as exc:
                problems.append({"line": lineno, "file": str(file), "error": str(exc)})
                continue
            records.append(rec)
            if max_examples is not None and len(records) >= max_examples:
                break
    return records, problems


def tokenize_mixture(records: list[dict], tok: VLMTokenizer, image_size: int, max_prefix: int, max_suffix: int,
                     problems: list[dict] | None = None, grid: int = 0, grid_box_bins: int = 0) -> MixtureData:
    """Load images (bad ones are recorded and their examples dropped) and tokenize every record.

    ``grid`` > 0: also the dense targets (:mod:`vpd.distill.grid_targets`) of every image whose
    records carry a ``scene`` (``{"width", "height", "objects"}``); other images are ignored cells.
    ``grid_box_bins`` > 0: the targets carry each object's box bins too (a head with box groups).
    """
    problems = [] if problems is None else problems
    cache: dict[str, int] = {}
    images: list[np.ndarray] = []
    grids: list[np.ndarray] = []
    keep, index = [], []
    for rec in records:
        path = rec["image"]
        if path not in cache:
            try:
                images.append(resize_uint8(path, image_size))
                if grid:
                    from vpd.distill.grid_targets import grid_targets, ignored

                    sc = rec.get("scene")
                    grids.append(grid_targets(sc["objects"], sc["width"], sc["height"], grid, grid_box_bins) if sc
                                 else ignored(grid, grid_box_bins))
                cache[path] = len(images) - 1
            except (ValueError, OSError) as exc:
                cache[path] = -1
                problems.append({"id": rec["id"], "error": f"image: {exc}"})
        if cache[path] >= 0:
            keep.append(rec)
            index.append(cache[path])
    if not keep:
        raise ValueError("no usable training examples (every record was malformed or had a bad image)")
    enc = [encode_example(tok, r["prefix"], r["suffix"], max_prefix, max_suffix) for r in keep]
    return MixtureData(
        ids=[r["id"] for r in keep], tasks=[str(r.get("task", "")) for r in keep],
        images=np.stack(images), image_index=np.asarray(index),
        tokens=np.stack([e.tokens for e in enc]), valid=np.stack([e.valid for e in enc]),
        suffix=np.stack([e.suffix for e in enc]),
        weight=np.asarray([float(r.get("weight", 1.0) or 0.0) for r in keep], np.float32),
        problems=problems, truncated=sum(e.truncated for e in enc), shortening=shortening_counts(enc).to_dict(),
        grid=np.stack(grids) if grids else None,
    )


def batch_rows(n: int, global_batch: int, step: int, seed: int) -> np.ndarray:
    """Rows of (0-based) update ``step``: a fresh permutation per epoch, a pure function of its inputs."""
    start = step * global_batch
    out = []
    while len(out) < global_batch:
        epoch, offset = divmod(start + len(out), n)
        perm = np.random.default_rng([seed, epoch]).permutation(n)
        out.extend(perm[offset: offset + global_batch - len(out)].tolist())
    return np.asarray(out)


# ---------------------------------------------------------------- optimisation
def make_optimizer(cfg: TrainConfig) -> tuple[optax.GradientTransformation, optax.Schedule]:
    warmup = max(0, min(cfg.warmup_steps, cfg.steps - 1))
    schedule = optax.warmup_cosine_decay_schedule(
        init_value=0.0 if warmup else cfg.lr, peak_value=cfg.lr, warmup_steps=warmup,
        decay_steps=max(cfg.steps, warmup + 1), end_value=cfg.lr * cfg.end_lr_fraction)
    decay_mask = lambda params: jax.tree.map(lambda x: x.ndim >= 2, params)  # noqa: E731
    tx = optax.chain(optax.clip_by_global_norm(cfg.clip_norm),
                     optax.adamw(schedule, b1=float(cfg.betas[0]), b2=float(cfg.betas[1]),
                                 weight_decay=cfg.weight_decay, mask=decay_mask))
    return tx, schedule


def target_count(batch: dict[str, np.ndarray]) -> int:
    """The most loss targets (valid suffix tokens after the first text position) in any row."""
    return int((np.asarray(batch["suffix"]) & np.asarray(batch["valid"]))[..., 1:].sum(-1).max(initial=0))


def grid_loss(model: PaliGemma, vision: jax.Array, grid: jax.Array) -> jax.Array:
    """Per-example dense grid loss ``[B]``: the mean cross-entropy of the attribute groups over
    non-ignored cells, plus (a head with box groups) the mean cross-entropy of the four box bins
    over the cells holding an object (:mod:`vpd.distill.grid_targets`)."""
    from vpd.distill.grid_targets import GROUPS, box_bins_of, groups

    b, n, d = vision.shape
    logits = model.grid_head(vision.reshape(b * n, d)).reshape(b, n, -1).astype(jnp.float32)  # [B, N, head]
    sizes = groups(box_bins_of(logits.shape[-1]))
    parts, start = [[0.0, 0.0], [0.0, 0.0]], 0
    for g, k in enumerate(sizes):
        target = grid[..., g]
        ok = (target >= 0).astype(jnp.float32)
        ce = optax.softmax_cross_entropy_with_integer_labels(logits[..., start:start + k], jnp.maximum(target, 0))
        part = parts[int(g >= len(GROUPS))]
        part[0], part[1], start = part[0] + (ce * ok).sum(-1), part[1] + ok.sum(-1), start + k
    loss = parts[0][0] / jnp.maximum(parts[0][1], 1.0)
    if len(sizes) > len(GROUPS):
        loss = loss + parts[1][0] / jnp.maximum(parts[1][1], 1.0)
    return loss


def suffix_loss(model: PaliGemma, batch: dict[str, jax.Array], max_targets: int | None = None,
                grid_weight: float = 0.0) -> tuple[jax.Array, jax.Array]:
    """(sum of weight x per-example mean suffix NLL, sum of weights) for one micro-batch.

    With ``max_targets`` (a static bound on :func:`target_count`, e.g. ``TrainConfig.max_suffix``),
    only the positions that predict a suffix token go through the final norm, the vocabulary
    projection and the softmax: each row's first ``max_targets`` target positions are picked with a
    one-hot matmul (exact, and a matmul again in the backward pass, not a scatter).
    """
    h, vision = model.hidden_and_vision(batch["pixels"], batch["tokens"], batch["valid"], batch["suffix"])
    h = h[:, :-1]
    targets = batch["tokens"][:, 1:]
    is_target = (batch["suffix"] & batch["valid"])[:, 1:]
    t = is_target.shape[1]
    if max_targets is not None and 0 < max_targets < t:
        idx = jnp.argsort(~is_target, axis=1, stable=True)[:, :max_targets]  # target positions first, in order
        h = jnp.einsum("bst,btd->bsd", jax.nn.one_hot(idx, t, dtype=h.dtype), h)
        targets = jnp.take_along_axis(targets, idx, axis=1)
        mask = jnp.take_along_axis(is_target, idx, axis=1).astype(jnp.float32)
    else:
        mask = is_target.astype(jnp.float32)
    nll = optax.softmax_cross_entropy_with_integer_labels(model.logits(h).astype(jnp.float32), targets)
    per_example = (nll * mask).sum(-1) / jnp.maximum(mask.sum(-1), 1.0)
    if grid_weight and "grid" in batch and hasattr(model, "grid_head"):
        per_example = per_example + grid_weight * grid_loss(model, vision, batch["grid"])
    w = batch["weight"].astype(jnp.float32)
    return (w * per_example).sum(), w.sum()


def _cast(tree, dtype):
    return jax.tree.map(lambda x: x.astype(dtype) if jnp.issubdtype(x.dtype, jnp.floating) else x, tree)


@partial(jax.jit, static_argnames=("graphdef", "cfg", "mesh"), donate_argnums=(0, 2))
def _update(trainable, frozen, opt_state, batch, *, graphdef, cfg: TrainConfig, mesh):
    """One optimizer update over ``batch`` shaped ``[accum, rows, …]``; module-level so that
    trainers with the same (graphdef, config, mesh) share one compiled program."""
    tx, _ = make_optimizer(cfg)

    def micro_loss(tr, mb):
        t, f = (_cast(tr, jnp.bfloat16), _cast(frozen, jnp.bfloat16)) if cfg.bf16 else (tr, frozen)
        if cfg.bf16:
            mb = dict(mb, pixels=mb["pixels"].astype(jnp.bfloat16))
        return suffix_loss(nnx.merge(graphdef, t, f), mb, cfg.max_suffix, cfg.grid_weight)

    grad_fn = jax.value_and_grad(micro_loss, has_aux=True)

    def accumulate(carry, mb):
        grads, num, den = carry
        (n, d), g = grad_fn(trainable, mb)
        return (jax.tree.map(jnp.add, grads, g), num + n, den + d), None

    if cfg.accum == 1:
        (num, den), grads = grad_fn(trainable, jax.tree.map(lambda x: x[0], batch))
    else:
        zeros = jax.tree.map(jnp.zeros_like, trainable)
        (grads, num, den), _ = jax.lax.scan(accumulate, (zeros, 0.0, 0.0), batch)
    den = jnp.maximum(den, 1e-9)
    grads = jax.tree.map(lambda g: g / den, grads)
    updates, opt_state = tx.update(grads, opt_state, trainable)
    trainable = optax.apply_updates(trainable, updates)
    trainable = jax.lax.with_sharding_constraint(trainable, tree_shardings(mesh, trainable))
    opt_state = jax.lax.with_sharding_constraint(opt_state, tree_shardings(mesh, opt_state))
    return trainable, opt_state, {"loss": num / den, "grad_norm": optax.global_norm(grads)}


@partial(jax.jit, static_argnames=("cfg",))
def _init_opt(trainable, *, cfg: TrainConfig):
    return make_optimizer(cfg)[0].init(trainable)


class Trainer:
    """Holds the sharded trainable/frozen state and optimizer; :meth:`step` runs one update."""

    def __init__(self, model: PaliGemma, cfg: TrainConfig) -> None:
        keep_freed_host_memory()  # best placed earlier (see vlm_host_memory); cheap to repeat
        self.cfg = cfg
        self.mesh = make_mesh(MeshSpec.parse(cfg.mesh))
        self.graphdef, trainable, frozen = nnx.split(model, trainable_filter(cfg.lora_rank), ...)
        self.schedule = make_optimizer(cfg)[1]
        self.train_sh = tree_shardings(self.mesh, trainable)
        self.frozen_sh = tree_shardings(self.mesh, frozen)
        self.trainable = jax.device_put(trainable, self.train_sh)
        self.frozen = jax.device_put(frozen, self.frozen_sh)
        opt_state = _init_opt(self.trainable, cfg=self._static_cfg)
        self.opt_sh = tree_shardings(self.mesh, opt_state)
        self.opt_state = jax.device_put(opt_state, self.opt_sh)

    @property
    def _static_cfg(self) -> TrainConfig:
        """The config with run-only fields (logging, checkpointing, data limits) normalised, so
        runs differing only in those share compiled code."""
        return dataclasses.replace(self.cfg, log_every=1, ckpt_every=1, max_examples=None, seed=0,
                                   tokenizer_vocab=None, loc_bins=0, shuffle_regions=False)

    def _step(self, trainable, frozen, opt_state, batch):
        return _update(trainable, frozen, opt_state, batch, graphdef=self.graphdef, cfg=self._static_cfg,
                       mesh=self.mesh)

    def step(self, batch: dict[str, np.ndarray]) -> dict[str, float]:
        """One update from a host batch of ``accum * batch`` rows (reshaped to ``[accum, batch, …]``)."""
        a = self.cfg.accum
        if target_count(batch) > self.cfg.max_suffix:
            raise ValueError(f"a row has {target_count(batch)} suffix targets, more than max_suffix="
                             f"{self.cfg.max_suffix} (the static bound the loss is compiled for)")
        shaped = {k: v.reshape(a, v.shape[0] // a, *v.shape[1:]) for k, v in batch.items()}
        placed = global_batch(self.mesh, shaped)
        self.trainable, self.opt_state, metrics = self._step(self.trainable, self.frozen, self.opt_state, placed)
        return {k: float(v) for k, v in metrics.items()}

    def model(self) -> PaliGemma:
        # all-gathers arrays sharded over other hosts' devices (FSDP across hosts); device_get otherwise
        from vpd.distill.vlm_multihost import gather_to_host

        return nnx.merge(self.graphdef, gather_to_host(self.trainable), gather_to_host(self.frozen))

    def params_flat(self) -> dict[str, np.ndarray]:
        model = self.model()
        return {k: np.asarray(v) for k, v in ckpt.flat_params(nnx.state(model, nnx.Param)).items()}

    # -- checkpoints
    def state_tree(self, step: int) -> dict:
        return {"params": ckpt.flat_params(nnx.state(self.model(), nnx.Param)),
                "opt": jax.tree.leaves(self.opt_state), "step": step}

    def load_tree(self, tree: dict) -> None:
        model = self.model()
        graphdef, params, rest = nnx.split(model, nnx.Param, ...)
        ckpt.fill_params(params, {k: np.asarray(v) for k, v in tree["params"].items()})
        _, trainable, frozen = nnx.split(nnx.merge(graphdef, params, rest), trainable_filter(self.cfg.lora_rank), ...)
        self.trainable = jax.device_put(trainable, self.train_sh)
        self.frozen = jax.device_put(frozen, self.frozen_sh)
        treedef = jax.tree.structure(self.opt_state)
        opt = jax.tree.unflatten(treedef, [np.asarray(x) for x in tree["opt"]])
        self.opt_state = jax.device_put(opt, self.opt_sh)


# ---------------------------------------------------------------- the run
@dataclass(frozen=True, kw_only=True)
class TrainResult:
    out: Path
    steps_done: int
    final_loss: float
    examples: int
    problems: int
    params: int
    seconds: float


def init_student(model_spec: str, texts: list[str], cfg: TrainConfig) -> tuple[PaliGemma, VLMTokenizer, dict]:
    """Model + tokenizer for ``tiny``/any preset (BPE trained on ``texts``), a HF folder or a student checkpoint."""
    if model_spec in PRESETS:
        config = get_preset(model_spec)
        from vpd.distill.loc_tokens import loc_vocabulary

        extra = loc_vocabulary(cfg.loc_bins) if cfg.loc_bins > 0 else []
        tok = train_bpe(texts, vocab_size=cfg.tokenizer_vocab or config.text.vocab_size, extra_tokens=extra)
        if tok.vocab_size > config.text.vocab_size:
            raise ValueError(f"tokenizer has {tok.vocab_size} tokens, more than the preset's {config.text.vocab_size}")
        config = config.replace(pad_id=tok.pad_id, eos_id=tok.eos_id, bos_id=tok.bos_id)
        if cfg.grid_boxes and config.vision.grid_head and cfg.loc_bins > 0:
            from vpd.distill.grid_targets import head_width

            config = config.replace(vision=dict(grid_head=head_width(cfg.loc_bins)))
        return PaliGemma(config, rngs=nnx.Rngs(cfg.seed)), tok, {"init": model_spec}
    path = Path(model_spec)
    if ckpt.is_student_checkpoint(path):
        model, tok, meta = ckpt.load_student(path)
        if meta.get("lora_rank", 0) > 0:
            raise ValueError("fine-tuning a LoRA checkpoint further is not supported; start from its base model")
        return model, tok, {"init": str(path)}
    if path.is_dir():
        from vpd.distill.vlm_import import load_hf_paligemma

        model, tok = load_hf_paligemma(path)
        return model, tok, {"init": str(path)}
    raise ValueError(f"--model {model_spec!r} is neither a preset ({', '.join(PRESETS.names())}) nor a folder")


def _write_loss_png(metrics_file: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [json.loads(line) for line in metrics_file.read_text().splitlines() if line.strip()]
    rows = [r for r in rows if "loss" in r]
    if not rows:
        return
    fig, ax = plt.subplots(figsize=(6, 3.5))
    ax.plot([r["step"] for r in rows], [r["loss"] for r in rows], lw=1.2)
    ax.set_xlabel("step")
    ax.set_ylabel("suffix loss (nats/token)")
    ax.set_title("training loss")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def _truncate_metrics(path: Path, step: int) -> None:
    if not path.is_file():
        return
    keep = [line for line in path.read_text().splitlines() if line.strip() and json.loads(line).get("step", 0) <= step]
    path.write_text("".join(line + "\n" for line in keep))


def train(data: str | Path, model_spec: str, out: str | Path, cfg: TrainConfig, *, resume: bool = False,
          stop_at: int | None = None, progress: bool = True) -> TrainResult:
    """Train and write the checkpoint folder ``out``; ``stop_at`` ends early (simulates an interruption)."""
    keep_freed_host_memory()  # before JAX's first computation: no page-faulting of the step's scratch
    out = Path(out)
    t0 = time.time()
    records, problems = read_mixture(data, cfg.max_examples)
    if not records:
        raise ValueError(f"{data}: no valid training records ({len(problems)} malformed lines)")
    start = 0
    if resume and ckpt.is_student_checkpoint(out) and ckpt.manager(out).latest_step() is not None:
        meta = ckpt.read_meta(out)
        model = ckpt.build_student(meta)
        from vpd.distill.vlm_tokenizer import load_tokenizer

        tok = load_tokenizer(out)
        cfg = dataclasses.replace(TrainConfig(**meta["train"]), steps=cfg.steps, ckpt_every=cfg.ckpt_every,
                                  log_every=cfg.log_every)
        resumed = True
    else:
        model, tok, info = init_student(model_spec, [r["prefix"] + "\n" + r["suffix"] for r in records], cfg)
        if cfg.lora_rank > 0:
            apply_lora(model, cfg.lora_rank, cfg.lora_alpha, seed=cfg.seed, targets=cfg.lora_targets)
        from vpd.distill.target_length import choose_lengths

        lengths = choose_lengths(tok, records, cap_prefix=cfg.max_prefix, cap_suffix=cfg.max_suffix)
        cfg = dataclasses.replace(cfg, max_prefix=lengths.max_prefix, max_suffix=lengths.max_suffix)
        if progress:
            print(lengths.summary())
        info = {**info, "lengths": lengths.to_dict()}
        meta = {"model": model.config.to_dict(), "lora_rank": cfg.lora_rank, "lora_alpha": cfg.lora_alpha,
                "lora_targets": cfg.lora_targets,
                "train": cfg.to_dict(), "max_prefix": cfg.max_prefix, "max_suffix": cfg.max_suffix,
                "data": str(Path(data).absolute()), **info}
        resumed = False
    grid = (model.config.vision.image_size // model.config.vision.patch_size
            if cfg.grid_weight and model.config.vision.grid_head else 0)
    from vpd.distill.grid_targets import box_bins_of

    data_ = tokenize_mixture(records, tok, model.config.vision.image_size, cfg.max_prefix, cfg.max_suffix, problems,
                             grid=grid, grid_box_bins=box_bins_of(model.config.vision.grid_head) if grid else 0)
    if not resumed:
        meta["shortening"] = data_.shortening
    from vpd.distill.region_shuffle import RegionShuffler

    shuffler = RegionShuffler.from_records(records, data_.ids, data_.tasks, tok, image_size=model.config.vision.image_size,
                                           max_prefix=cfg.max_prefix, max_suffix=cfg.max_suffix,
                                           seed=cfg.seed) if cfg.shuffle_regions else None
    gb = cfg.batch * cfg.accum
    if cfg.batch % MeshSpec.parse(cfg.mesh).size:
        raise ValueError(f"batch {cfg.batch} must be divisible by the mesh size {MeshSpec.parse(cfg.mesh).size}")
    trainer = Trainer(model, cfg)
    from vpd.distill.vlm_multihost import is_primary

    primary = is_primary()
    metrics_file = out / "metrics.jsonl"
    if resumed:
        start, tree = ckpt.restore_state(out)
        trainer.load_tree(tree)
        _truncate_metrics(metrics_file, start)
    else:
        out.mkdir(parents=True, exist_ok=True)
        if primary:  # multi-host: only process 0 writes the shared files
            ckpt.write_meta(out, meta, tok)
            from vpd.distill.image_overlap import record_training_images

            record_training_images(data, out, init=model_spec)  # what `vpd eval` checks for overlap
            metrics_file.write_text("")
            (out / "problems.jsonl").write_text("".join(json.dumps(p) + "\n" for p in data_.problems))
    mgr = ckpt.manager(out)
    end = cfg.steps if stop_at is None else min(cfg.steps, stop_at)
    tokens_per_row = data_.valid.sum(1) + model.config.num_image_tokens
    loss = float("nan")
    from rich.progress import BarColumn, Progress, TextColumn, TimeRemainingColumn

    with Progress(TextColumn("[bold]train"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                  TextColumn("loss {task.fields[loss]}"), TimeRemainingColumn(), disable=not progress,
                  transient=False) as bar, metrics_file.open("a") as mf:
        task = bar.add_task("train", total=cfg.steps, completed=start, loss="-")
        for step in range(start, end):
            rows = batch_rows(len(data_), gb, step, cfg.seed)
            t = time.perf_counter()
            batch = data_.batch(rows)
            m = trainer.step(shuffler.apply(batch, rows, step) if shuffler else batch)
            dt = time.perf_counter() - t
            loss = m["loss"]
            if not math.isfinite(loss):
                raise FloatingPointError(f"loss became {loss} at step {step + 1}; lower --lr or disable --bf16")
            if primary and ((step + 1) % cfg.log_every == 0 or step + 1 == end):
                mf.write(json.dumps({"step": step + 1, "loss": loss, "grad_norm": m["grad_norm"],
                                     "lr": float(trainer.schedule(step)), "examples_per_s": gb / dt,
                                     "tokens_per_s": float(tokens_per_row[rows].sum()) / dt, "seconds": dt}) + "\n")
                mf.flush()
            if (step + 1) % cfg.ckpt_every == 0 or step + 1 == end:
                mgr.save(step + 1, args=ckpt.ocp.args.StandardSave(trainer.state_tree(step + 1)))
            bar.update(task, completed=step + 1, loss=f"{loss:.4f}")
    if end == start == 0:  # an untrained model (a baseline): save its initial state
        mgr.save(0, args=ckpt.ocp.args.StandardSave(trainer.state_tree(0)))
    mgr.wait_until_finished()
    mgr.close()
    if primary:
        _write_loss_png(metrics_file, out / "loss.png")
    return TrainResult(out=out, steps_done=end, final_loss=loss, examples=len(data_), problems=len(data_.problems),
                       params=count_params(model), seconds=time.time() - t0)
