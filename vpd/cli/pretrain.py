"""`vpd pretrain`: the student's first stage (generic dense tasks on train-split scenes)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from vpd.cli import app
from vpd.distill.pretrain_tasks import parse_tasks


@app.command("pretrain")
def pretrain_cmd(
    data: Path = typer.Option(..., "--data", help="A `shapes` dataset folder (examples.jsonl with scene records); "
                              "only its train-split scenes are used."),
    out: Path = typer.Option(..., "--out", help="Base checkpoint folder to write (then `vpd train --init OUT`)."),
    model: str = typer.Option("student-s", "--model", help="Model preset (student-s, tiny, test …)."),
    tasks: str = typer.Option("caption=1,detect=3,boxes=2,describe=2", "--tasks",
                              help="Pretraining tasks and records per scene (caption, detect, boxes, describe)."),
    steps: int = typer.Option(1500, "--steps", help="Optimizer updates."),
    batch: int = typer.Option(32, "--batch", help="Rows per update."),
    lr: float = typer.Option(2e-3, "--lr", help="Peak learning rate (warmup + cosine)."),
    loc_bins: int = typer.Option(64, "--loc-bins", help="Location-token bins per axis (PaliGemma uses 1024)."),
    max_scenes: Optional[int] = typer.Option(None, "--max-scenes", help="Use only the first N train scenes."),
    grid_weight: float = typer.Option(1.0, "--grid-weight", help="Weight of the dense per-image-token loss (colour, "
                                      "shape, size of the object centred in each cell; 0: text tasks only)."),
    grid_boxes: bool = typer.Option(False, "--grid-boxes/--no-grid-boxes", help="The dense head also predicts each "
                                    "object's box (four location bins) in its centre cell: the encoder learns to "
                                    "localise, but at student-s size the captions and the tuned student got worse "
                                    "(README), so off by default."),
    eval_scenes: int = typer.Option(100, "--eval-scenes", help="Val scenes for the detection measurement (0: skip)."),
    seed: int = typer.Option(0, "--seed"),
    eval_only: bool = typer.Option(False, "--eval-only", help="Only measure the existing base in --out "
                                   "(detection and grid head on val scenes) and print it."),
) -> None:
    """Pretrain the student on captioning / detection (location tokens) / grounding of train scenes,
    never on evaluation scenes or question templates; writes BASE/pretrain.json with its detection quality."""
    from rich import print as rprint

    from vpd.distill.pretrain import detection_quality, pretrain, pretrain_config

    if eval_only:
        det = detection_quality(out, data, split="val", limit=eval_scenes or 100, bins=loc_bins)
        det.pop("examples", None)
        rprint(json.dumps(det))
        return

    cfg = pretrain_config(steps=steps, batch=batch, lr=lr, seed=seed, loc_bins=loc_bins, grid_weight=grid_weight,
                          grid_boxes=grid_boxes)
    try:
        res = pretrain(data, out, cfg, preset=model, tasks=parse_tasks(tasks), max_scenes=max_scenes,
                       eval_scenes=eval_scenes)
    except (FileNotFoundError, ValueError) as exc:
        rprint(f"[red]error:[/red] {exc}")
        raise typer.Exit(2)
    det = {k: v for k, v in res.detection.items() if k != "examples"}
    rprint(f"pretrained on {res.records} records from {res.scenes} train scenes, {res.steps} steps "
           f"(final loss {res.final_loss:.4f}) in {res.seconds:.0f}s -> {res.out}")
    rprint(f"detection on held-out scenes: {json.dumps(det)}")
