"""`vpd train` (instruction-tune the student VLM on a mixture) and `vpd predict` (answer with it)."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Optional

import typer

from vpd.cli import app


@app.command("train")
def train_cmd(
    data: Path = typer.Option(..., "--data", help="Mixture folder from `vpd mix` (train.jsonl, val.jsonl)."),
    model: str = typer.Option("tiny", "--model", help="Preset (tiny, paligemma-3b-pt-224 …), a Hugging Face "
                              "PaliGemma folder, or a student checkpoint to continue from."),
    out: Path = typer.Option(..., "--out", help="Checkpoint folder to write (config.json, tokenizer.json, state/)."),
    init: Optional[Path] = typer.Option(None, "--init", help="Start from this pretrained base (`vpd pretrain --out BASE`); "
                                         "overrides --model."),
    recipe: str = typer.Option("default", "--recipe", help="Training recipe: default | smoke | vpd-paper (LoRA rank 8 "
                               "on every linear layer, 8,000 steps of batch 128 by accumulation, lr 1e-4 cosine, "
                               "1% warmup, AdamW betas 0.9/0.98). Options given here win."),
    steps: Optional[int] = typer.Option(None, "--steps", help="Optimizer updates."),
    batch: Optional[int] = typer.Option(None, "--batch", help="Rows per micro-batch."),
    lr: Optional[float] = typer.Option(None, "--lr", help="Peak learning rate (warmup + cosine)."),
    lora_rank: Optional[int] = typer.Option(None, "--lora-rank", help="LoRA rank (0 = full fine-tuning; default: "
                                            "the recipe's, 0 except vpd-paper)."),
    accum: Optional[int] = typer.Option(None, "--accum", help="Gradient-accumulation micro-batches per update "
                                        "(default: the recipe's; vpd-paper: 128 / batch)."),
    bf16: bool = typer.Option(False, "--bf16", help="Compute in bfloat16 (float32 master weights)."),
    mesh: str = typer.Option("", "--mesh", help="Device mesh, e.g. data=2,fsdp=2 (default: one device)."),
    resume: bool = typer.Option(False, "--resume", help="Continue from the latest checkpoint in --out."),
    seed: int = typer.Option(0, "--seed", help="Seed for init and data order."),
    max_examples: Optional[int] = typer.Option(None, "--max-examples", help="Use only the first N mixture lines."),
    shuffle_regions: bool = typer.Option(True, "--shuffle-regions/--no-shuffle-regions",
                                         help="Fresh LSKD region ids (text and drawing) each time a row is batched."),
) -> None:
    """Instruction-tune the student (loss on the suffix only); writes metrics.jsonl and loss.png."""
    from rich import print as rprint

    from vpd.distill import vlm_multihost

    # Multi-host: join the job before any JAX computation (JAX_COORDINATOR_ADDRESS / JAX_NUM_PROCESSES
    # / JAX_PROCESS_ID, or VPD_MULTIHOST=auto on TPU pods and SLURM); a no-op on one host.
    vlm_multihost.initialize()
    from vpd.distill.vlm_train import RECIPES, train

    overrides = {k: v for k, v in dict(steps=steps, batch=batch, lr=lr, max_examples=max_examples,
                                        lora_rank=lora_rank, accum=accum).items() if v is not None}
    cfg = RECIPES.get(recipe)(**overrides)
    cfg = dataclasses.replace(cfg, bf16=bf16, mesh=mesh, seed=seed, shuffle_regions=shuffle_regions)
    try:
        if init is not None and not init.is_dir():
            raise FileNotFoundError(f"--init {init}: no such base checkpoint folder (make one with `vpd pretrain`)")
        result = train(data, str(init) if init is not None else model, out, cfg, resume=resume)
    except (FileNotFoundError, ValueError) as exc:
        rprint(f"[red]error:[/red] {exc}")
        raise typer.Exit(2)
    rprint(f"trained {result.params:,} params on {result.examples} examples for {result.steps_done} steps "
           f"(final loss {result.final_loss:.4f}, {result.problems} problems) in {result.seconds:.0f}s -> {result.out}")


@app.command("predict")
def predict_cmd(
    model: Path = typer.Option(..., "--model", help="Student checkpoint folder (from `vpd train`)."),
    data: Path = typer.Option(..., "--data", help="Dataset folder with examples.jsonl."),
    out: Path = typer.Option(..., "--out", help="Predictions JSONL to write: {id, prediction, rationale?, "
                             "cot_prediction?}."),
    rationale: bool = typer.Option(False, "--rationale", help="Also generate a rationale (rationale task prompt) "
                                   "and parse its answer (cot_prediction, scored as chain-of-thought)."),
    split: Optional[str] = typer.Option(None, "--split", help="Only examples whose `split` field equals this."),
    batch: int = typer.Option(16, "--batch", help="Decoding batch size."),
    limit: Optional[int] = typer.Option(None, "--limit", help="Only the first N examples."),
) -> None:
    """Answer each example's question (label prompt), greedy decoding with a KV cache."""
    from rich import print as rprint

    from vpd.distill.vlm_checkpoint import StudentCheckpointError
    from vpd.distill.vlm_predict import predict_dataset

    try:
        counts = predict_dataset(model, data, out, rationale=rationale, split=split, batch=batch, limit=limit)
    except (FileNotFoundError, StudentCheckpointError) as exc:
        rprint(f"[red]error:[/red] {exc}")
        raise typer.Exit(2)
    rprint(f"wrote {counts['examples']} predictions ({counts['errors']} image errors) -> {counts['out']}")
    if counts.get("scored"):
        rprint(f"accuracy on the {counts['scored']} labelled examples: {counts['accuracy']:.1%} "
               f"(strict {counts['strict_accuracy']:.1%}; per-example checkers; `vpd eval` applies a "
               "benchmark's official rules)")
        if "cot_accuracy" in counts:
            rprint(f"rationale-then-answer (cot) accuracy: {counts['cot_accuracy']:.1%} (strict "
                   f"{counts['cot_strict_accuracy']:.1%}; {counts['cot_unparsed']} rationales stated no answer)")
