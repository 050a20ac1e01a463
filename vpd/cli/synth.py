"""`vpd synth`: sample, run and verify programs for a dataset; `vpd synth-report RUN` reprints a summary."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Optional

import typer

from vpd.cli import app


@app.command("synth")
def synth(
    ctx: typer.Context,
    data: Path = typer.Option(..., "--data", help="Dataset folder (examples.jsonl + images/) or a .jsonl file."),
    out: str = typer.Option(..., "--out", help="Run directory (runs/NAME); with --engine ray also an fsspec URI (s3://…)."),
    llm: str = typer.Option("gemma", "--llm", help="Sampler spec: gemma | openai:MODEL@URL | transformers:PATH | "
                                                  "llamacpp:PATH.gguf | replay:FILE.jsonl|RUN_DIR; options after "
                                                  "'?': openai:M@URL?concurrency=16&context_tokens=8192"),
    tools: str = typer.Option("shapes", "--tools", help="Tools spec: a backend name, 'shapes,vqa=blip', or a YAML file."),
    k: Optional[int] = typer.Option(None, "--k", min=1, help="Programs sampled per question (default 5; 1 with "
                                    "--no-labels, as in VPD)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a run: skip examples already committed."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Delete an existing run's results first."),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Use only the first N examples."),
    split: str = typer.Option("train", "--split", help="Only examples whose `split` is this (train/val/test; "
                              "examples without one are kept); 'all': every split."),
    no_reuse: bool = typer.Option(False, "--no-reuse", help="Sample per example instead of once per distinct question."),
    no_labels: bool = typer.Option(False, "--no-labels", help="Do not verify: answer by majority vote and record the "
                                   "chosen program's trace (predictions.jsonl) for `vpd rationalize`."),
    fewshot: str = typer.Option("nearest", "--fewshot", help="Few-shot examples: nearest | fixed."),
    exclude_same_template: bool = typer.Option(False, "--exclude-same-template",
                                               help="Leave-template-out: never show a few-shot program written "
                                                    "for the question's own template."),
    library: Optional[Path] = typer.Option(None, "--library", help="A few-shot program library folder "
                                           "(*.py examples, as programs/library/); default: the packaged one."),
    workers: int = typer.Option(2, "--workers", min=1, help="Sandbox worker processes."),
    seed: int = typer.Option(0, "--seed", help="Sampling seed."),
    temperature: float = typer.Option(0.7, "--temperature", min=0.0, help="Sampling temperature (0 = greedy)."),
    select: str = typer.Option("first", "--select", help="Which passing program to keep: first | shortest | majority | "
                               "score (the LLM's own score: mean token log-probability)."),
    recipe: Optional[str] = typer.Option(None, "--recipe", help="Named settings; options given here win. vpd-paper: "
                                         "k=5, temperature 0.5, --judge, --select score (as VPD)."),
    max_tokens: int = typer.Option(256, "--max-tokens", min=1, help="Max tokens per completion."),
    timeout_s: float = typer.Option(5.0, "--timeout", help="Per-program wall-clock limit (seconds)."),
    memory_mb: int = typer.Option(512, "--memory-mb", help="Per-program memory limit (MiB)."),
    cache: str = typer.Option("default", "--cache", help="Tool cache: default (~/.cache/vpd/tools.sqlite) | memory | off | PATH."),
    checker: Optional[str] = typer.Option(None, "--checker", help="Checker or benchmark name (default: inferred per example)."),
    shared_analyses: bool = typer.Option(True, "--shared-analyses/--no-shared-analyses",
                                         help="Cache each backend's per-image analysis so new queries on an image reuse it."),
    judge: bool = typer.Option(False, "--judge", help="Ask the LLM about ambiguous answer mismatches."),
    greedy_first: bool = typer.Option(True, "--greedy-first/--no-greedy-first",
                                      help="Make candidate 0 greedy and sample the other k-1."),
    llm_batch: Optional[int] = typer.Option(None, "--llm-batch", min=1,
                                            help="Questions sampled together. Default: a remote sampler's "
                                                 "concurrency (each question its own request, same programs "
                                                 "as one by one), 1 in-process (a batch shares one seed)."),
    overlap: Optional[bool] = typer.Option(None, "--overlap/--no-overlap",
                                           help="Sample the next questions while programs run (default: on "
                                                "for remote samplers)."),
    allow_prompt_change: bool = typer.Option(False, "--allow-prompt-change",
                                             help="Resume even if the program prompt (API section, few-shot "
                                                  "library) changed since the run started."),
    require_isolation: bool = typer.Option(False, "--require-isolation",
                                           help="Refuse to run unless every sandbox OS layer (network namespace, "
                                                "uid drop, no_new_privs, not dumpable, rlimits) is active."),
    retry_failed: Optional[bool] = typer.Option(None, "--retry-failed/--no-retry-failed",
                                                help="Redo the examples that LLM or tool-backend failures "
                                                     "(llm_error, tool_error) cost a candidate. Default: on "
                                                     "with --resume; --retry-failed alone resumes the run."),
    max_infra_failures: int = typer.Option(20, "--max-infra-failures", min=0,
                                           help="Stop (exit 3, resumable) after this many consecutive "
                                                "candidates failed at the LLM or at a tool backend; 0 never."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress bar."),
    engine: str = typer.Option("local", "--engine", help="local (this machine) | ray (shards as Ray tasks; pip install vpd[ray])."),
    address: Optional[str] = typer.Option(None, "--address", help="Ray cluster address (HOST:6379 | auto); default: start a local one."),
    shards: Optional[int] = typer.Option(None, "--shards", min=1, help="Ray: number of shards (default 4 per cluster CPU)."),
    tool_actors: int = typer.Option(1, "--tool-actors", min=1, help="Ray: actors hosting the tool backends."),
    actor_gpus: float = typer.Option(0.0, "--actor-gpus", min=0.0, help="Ray: GPUs per tool actor (fractions allowed)."),
) -> None:
    """Sample k programs per question, run them in the sandbox, check them against the labels, write RUN."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from vpd.selection import SELECTORS
    from vpd.synth import SynthConfig, run_synth
    from vpd.splits import normalize_split
    from vpd.synth_report import print_report

    if fewshot not in ("nearest", "fixed"):
        raise typer.BadParameter("--fewshot must be 'nearest' or 'fixed'")
    from vpd.synth_recipes import apply_recipe

    explicit = {n for n in ("k", "temperature", "judge", "select")  # given by the user: they win over --recipe
                if getattr(ctx.get_parameter_source(n), "name", "DEFAULT") not in ("DEFAULT", "DEFAULT_MAP")}
    try:
        picked = apply_recipe(recipe, {"k": k, "temperature": temperature, "judge": judge, "select": select}, explicit)
    except KeyError as exc:  # unknown recipe -> "did you mean"
        raise typer.BadParameter(str(exc.args[0] if exc.args else exc), param_hint="--recipe") from None
    k, temperature, judge, select = picked["k"], picked["temperature"], picked["judge"], picked["select"]
    SELECTORS.get(select)  # unknown rule -> "did you mean"
    if not data.exists():
        raise typer.BadParameter(f"no dataset at {data}", param_hint="--data")
    check_sampler_spec(llm)
    if library is not None and not library.is_dir():
        raise typer.BadParameter(f"no program library folder at {library}", param_hint="--library")
    k = k if k is not None else (1 if no_labels else 5)
    cfg = SynthConfig(data=str(data), out=str(out), llm=llm, tools=tools, k=k, resume=resume, overwrite=overwrite,
                      limit=limit, split=normalize_split(split), reuse=not no_reuse, labels=not no_labels, fewshot=fewshot,
                      exclude_same_template=exclude_same_template,
                      library=str(library.resolve()) if library is not None else None,
                      workers=workers, seed=seed, temperature=temperature, select=select, max_tokens=max_tokens,
                      timeout_s=timeout_s, memory_mb=memory_mb, cache=cache, checker=checker, judge=judge,
                      llm_batch=llm_batch, overlap=overlap, greedy_first=greedy_first, share_analyses=shared_analyses,
                      allow_prompt_change=allow_prompt_change, retry_failed=retry_failed,
                      max_infra_failures=max_infra_failures, require_isolation=require_isolation,
                      progress=not quiet, recipe=recipe)
    from vpd.programs.sampler_base import SamplerOptionError
    from vpd.runs import ConfigMismatchError, RunExistsError
    from vpd.sandbox.isolation import IsolationError

    if require_isolation:  # before anything is loaded or written
        from vpd.sandbox.pool import probe_isolation

        try:
            probe_isolation(require=True)
        except IsolationError as exc:
            typer.secho(f"vpd synth: {exc}", fg="red", err=True)
            raise typer.Exit(2)

    if engine not in ("local", "ray"):
        raise typer.BadParameter("--engine must be 'local' or 'ray'", param_hint="--engine")
    if engine == "ray":
        from vpd.ray_engine import run_ray_cli

        raise typer.Exit(run_ray_cli(cfg, address=address, shards=shards, tool_actors=tool_actors,
                                     actor_gpus=actor_gpus))
    from vpd.synth_failures import InfrastructureFailureError

    try:
        result = run_synth(cfg)
    except InfrastructureFailureError as exc:
        from vpd.runs import RunStore

        done = len(RunStore(out).done_ids()) if Path(out).is_dir() else 0
        typer.secho(f"vpd synth: {exc} ({done} examples are committed in {out})", fg="red", err=True)
        raise typer.Exit(3)
    except (RunExistsError, ConfigMismatchError, SamplerOptionError, IsolationError) as exc:
        typer.secho(str(exc), fg="red", err=True)
        raise typer.Exit(2)
    except KeyboardInterrupt:
        from vpd.runs import RunStore

        done = len(RunStore(out).done_ids()) if Path(out).is_dir() else 0
        typer.secho(f"\ninterrupted: {done} examples are committed in {out}; continue with the same command "
                    "and --resume", fg="yellow", err=True)
        raise typer.Exit(130)
    print_report(result.report)
    typer.echo(f"run written to {result.out} (report.json, verified.jsonl, candidates-*.jsonl)")


def check_sampler_spec(llm: str, param_hint: str = "--llm") -> None:
    """Fail fast, before any model loads, on an unknown sampler kind or a malformed/secret option."""
    from vpd.programs.samplers import SAMPLERS, SamplerOptionError, parse_spec, split_options
    from vpd.registry import UnknownNameError

    try:
        split_options(llm)
        SAMPLERS.get(parse_spec(llm)[0])
    except (SamplerOptionError, UnknownNameError, ValueError) as exc:
        raise typer.BadParameter(str(exc.args[0] if exc.args else exc), param_hint=param_hint) from None


@app.command("synth-report")
def synth_report_cmd(run: Path = typer.Argument(..., help="A `vpd synth` run directory.")) -> None:
    """Recompute and print the summary of a synth run (writes RUN/report.json)."""
    from vpd.runs import RunStore
    from vpd.synth_report import build_report, print_report

    if not run.is_dir():
        raise typer.BadParameter(f"no run directory at {run}")
    report = build_report(run)
    RunStore(run).write_report(report)
    print_report(report)
