"""The synth stage on a Ray cluster: shards of examples as Ray tasks, tool backends in Ray actors.

    driver ── partition examples by question ──▶ shard 0 … shard N-1 (Ray tasks, retried on failure)
                                                     │  each: a sandbox pool on its node, the
                                                     │  sampler (e.g. balanced:openai:…|openai:…),
                                                     │  tools through a ToolActor (num_gpus=…)
                                                     ▼
                 OUT/candidates-NNNNN.jsonl  ◀── one atomic commit per shard (temp file + move)

Exactly once. A shard's output becomes visible only through one atomic move of a complete file
named after the shard; a task first checks whether its shard is already committed and returns at
once if so. A killed worker, a retried task or a re-run with ``resume`` therefore never loses or
duplicates an example: at worst a shard is computed twice and committed once (shards are
deterministic: seeds are derived per question, not per worker).

Partitioning keeps every example of one (question, choices) in the same shard, so question-level
program reuse still samples once per distinct question.

Outputs go to a local folder or any fsspec URI (``s3://…``, ``gs://…``); when the output is
local, the driver also rebuilds ``verified.jsonl`` and writes ``report.json`` exactly as the local
engine does. Image paths must be readable from every node (shared storage).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from vpd.datasets import write_examples
from vpd.synth import SynthConfig, question_key, select_examples
from vpd.tools.backend import Backend
from vpd.tools.specs import TOOLS
from vpd.tools.toolbox import boxes_from_json
from vpd.types import Example

SHARD_NAME = "candidates-{:05d}.jsonl"


# ---------------------------------------------------------------------------------------------
# storage: local paths or fsspec URIs, atomic commits
# ---------------------------------------------------------------------------------------------
def _fs(uri: str) -> tuple[Any, str]:
    import fsspec

    fs, root = fsspec.core.url_to_fs(uri)
    return fs, root.rstrip("/")


def shard_committed(out: str, shard: int) -> bool:
    fs, root = _fs(out)
    return fs.exists(f"{root}/{SHARD_NAME.format(shard)}")


def commit_file(local: Path, out: str, name: str) -> None:
    """Upload ``local`` to ``out/name`` atomically: write a unique temp name, then move it."""
    fs, root = _fs(out)
    fs.makedirs(root, exist_ok=True)
    tmp = f"{root}/.{name}.tmp-{uuid.uuid4().hex}"
    fs.put_file(str(local), tmp)
    fs.mv(tmp, f"{root}/{name}")


# ---------------------------------------------------------------------------------------------
# tools in actors
# ---------------------------------------------------------------------------------------------
class ToolActorImpl:
    """Hosts a Toolbox (models loaded once per actor) and serves batched tool calls from tasks."""

    def __init__(self, spec: str) -> None:
        from vpd.tools import load

        self.toolbox = load(spec)
        self.calls = 0

    def describe(self) -> dict[str, Any]:
        return {t: {"tag": b.cache_tag(), "max_batch": b.max_batch, "batchable": sorted(b.batchable)}
                for t, b in self.toolbox.backends.items()}

    def run_batch(self, tool: str, images: list[np.ndarray | None], args: list[dict[str, Any]]) -> list[Any]:
        """JSON results per input; an input that fails yields ``{"__error__": message}``."""
        from PIL import Image

        from vpd.tools.toolbox import to_json_result

        backend = self.toolbox.backend_for(tool)
        pil = [None if a is None else Image.fromarray(a) for a in images]
        self.calls += len(pil)
        out: list[Any] = []
        for value in backend.run_batch(tool, pil, args):
            if isinstance(value, BaseException):
                out.append({"__error__": f"{type(value).__name__}: {value}"})
            else:
                out.append(to_json_result(tool, value))
        return out

    def stats(self) -> dict[str, int]:
        return {"calls": self.calls}


class ActorBackend(Backend):
    """A backend whose tools run in a Ray actor (one per node or per GPU); batches travel whole."""

    name = "ray_actor"

    def __init__(self, actor: Any, tool: str, info: dict[str, Any]) -> None:
        super().__init__()
        self.actor, self.tool, self.info = actor, tool, info
        self.provides = frozenset({tool})  # type: ignore[misc]
        self.batchable = frozenset({tool})  # type: ignore[misc]
        self.max_batch = int(info.get("max_batch", 1)) or 1  # type: ignore[misc]

    def cache_tag(self) -> str:
        return str(self.info.get("tag", f"ray:{self.tool}"))

    def _decode(self, value: Any) -> Any:
        if isinstance(value, dict) and "__error__" in value:
            from vpd.tools.errors import ToolError

            return ToolError(value["__error__"])
        return boxes_from_json(value) if TOOLS.get(self.tool).returns_boxes else value

    def run_batch(self, tool: str, images: list[Any], args: list[dict[str, Any]]) -> list[Any]:
        import ray

        arrays = [None if im is None else np.asarray(im) for im in images]
        return [self._decode(v) for v in ray.get(self.actor.run_batch.remote(tool, arrays, args))]

    def run(self, tool: str, image: Any, **args: Any) -> Any:
        value = self.run_batch(tool, [image], [args])[0]
        if isinstance(value, Exception):
            raise value
        return value


def actor_toolbox(actor: Any, cache: Any = None) -> Any:
    """A batching ToolServer whose backends forward to ``actor``."""
    import ray

    from vpd.tools.server import ToolServer
    from vpd.tools.toolbox import Toolbox

    info = ray.get(actor.describe.remote())
    return ToolServer(Toolbox({t: ActorBackend(actor, t, i) for t, i in info.items()}, cache=cache), max_wait_ms=5.0)


# ---------------------------------------------------------------------------------------------
# shards
# ---------------------------------------------------------------------------------------------
def partition(examples: Sequence[Example], n_shards: int, reuse: bool = True) -> list[list[Example]]:
    """Split examples into ``n_shards`` by a stable hash of their question key (order kept)."""
    shards: list[list[Example]] = [[] for _ in range(n_shards)]
    for ex in examples:
        key = json.dumps(question_key(ex, reuse), sort_keys=True, default=list)
        h = int(hashlib.sha1(key.encode()).hexdigest()[:8], 16)
        shards[h % n_shards].append(ex)
    return shards


def synth_shard(cfg_dict: dict[str, Any], shard: int, records: list[dict[str, Any]], out: str,
                actor: Any = None) -> dict[str, Any]:
    """Run the synth stage on one shard and commit its candidates file; idempotent."""
    from vpd.synth import run_synth
    from vpd.tools.cache import open_cache

    if shard_committed(out, shard):
        return {"shard": shard, "skipped": True}
    t0 = time.time()
    with tempfile.TemporaryDirectory(prefix=f"vpd-shard{shard}-") as tmp:
        data = Path(tmp) / "data"
        examples = [Example.from_dict(r) for r in records]
        write_examples(examples, data / "examples.jsonl")
        cfg = SynthConfig(**{**cfg_dict, "data": str(data), "out": str(Path(tmp) / "run"), "resume": False,
                             "overwrite": True, "limit": None, "split": None, "progress": False})
        toolbox = actor_toolbox(actor, cache=open_cache(cfg.cache)) if actor is not None else None
        result = run_synth(cfg, toolbox=toolbox)
        merged = Path(tmp) / "merged.jsonl"
        with merged.open("wb") as dst:
            for part in sorted((Path(tmp) / "run").glob("candidates-*.jsonl")):
                dst.write(part.read_bytes())
        if not shard_committed(out, shard):  # a concurrent attempt may have won: same content
            commit_file(merged, out, SHARD_NAME.format(shard))
    return {"shard": shard, "skipped": False, "examples": len(records), "seconds": time.time() - t0,
            "verified": result.report.get("verified", {}), "pid": os.getpid()}


def run_synth_ray(cfg: SynthConfig, *, address: str | None = None, shards: int | None = None,
                  tool_actors: int = 1, actor_gpus: float = 0.0, task_cpus: float = 1.0,
                  max_retries: int = 3, use_actor: bool = True) -> dict[str, Any]:
    """Run ``cfg`` on Ray (``address=None`` starts a local cluster). Returns the driver summary."""
    import ray

    from vpd.runs import RunStore, atomic_write_json

    started = time.time()
    if not ray.is_initialized():
        ray.init(address=address, include_dashboard=False, log_to_driver=False,
                 **({} if address else {"num_cpus": os.cpu_count() or 2}))
    examples, counts = select_examples(cfg)
    n = shards or max(1, min(len(examples), int(ray.cluster_resources().get("CPU", 1)) * 4))
    parts = partition(examples, n, cfg.reuse)
    out = cfg.out
    local = "://" not in out
    if local:
        existing = RunStore(out).shards()
        if existing and not cfg.resume and not cfg.overwrite:
            from vpd.runs import RunExistsError

            raise RunExistsError(f"run directory {out} already has results; use --resume or --overwrite")
        if cfg.overwrite and not cfg.resume:
            for p in existing:
                p.unlink()
        Path(out).mkdir(parents=True, exist_ok=True)
        atomic_write_json(Path(out) / "config.json", {**cfg.to_dict(), "engine": "ray", "shards": n})
    actors = []
    if use_actor:
        Actor = ray.remote(num_gpus=actor_gpus, num_cpus=0)(ToolActorImpl)
        actors = [Actor.remote(cfg.tools) for _ in range(max(1, tool_actors))]
    remote = ray.remote(num_cpus=task_cpus, max_retries=max_retries, retry_exceptions=True)(synth_shard)
    cfg_dict = {k: v for k, v in cfg.to_dict().items()}
    pending = {}
    for i, part in enumerate(parts):
        if not part:
            continue
        actor = actors[i % len(actors)] if actors else None
        ref = remote.remote(cfg_dict, i, [e.to_dict() for e in part], out, actor)
        pending[ref] = i
    results: list[dict[str, Any]] = []
    from rich.progress import Progress

    with Progress(transient=False) as progress:
        task = progress.add_task("synth (ray)", total=len(pending))
        while pending:
            done, _ = ray.wait(list(pending), num_returns=1)
            for ref in done:
                results.append(ray.get(ref))
                pending.pop(ref)
                progress.advance(task)
    summary = {"engine": "ray", "shards": n, "examples": len(examples), "results": results,
               "seconds": time.time() - started, "address": address or "local"}
    if local:
        from vpd import synth_report

        store = RunStore.open(out, cfg.to_dict() | {"engine": "ray", "shards": n}, resume=True)
        store.close()
        manifest = {"stage": "synth", "engine": "ray", "config": cfg.to_dict(), "counts": counts,
                    "ray": {k: v for k, v in summary.items() if k != "results"},
                    "shard_results": results}
        atomic_write_json(Path(out) / "manifest.json", manifest)
        report = synth_report.build_report(out)
        RunStore(out).write_report(report)
        summary["report"] = report
    return summary


__all__ = ["run_synth_ray", "synth_shard", "partition", "ToolActorImpl", "ActorBackend", "commit_file"]
