"""The student ablation at a larger size on one lent GPU, as one prepared script.

A lent device machine starts bare (jax, flax, optax, orbax, torch, PIL; no RestrictedPython, openai
or ray), reaches nothing, and takes at most 64 MiB with a call. So the work splits in two:

* ``pack`` (here): the ``vpd`` source mapped like ``pyproject.toml``'s package-dir (``src/vpd/…``), the
  verified mixture (label + rationale lines, image paths made relative to the dataset), the dataset's
  generator settings and the sha256 of its ``examples.jsonl`` and of every image — no images, no weights::

      python -m vpd.benchmarks.device_ablation pack --dataset /work/data/scale \\
          --mixture /work/data/labels_words --out artifacts/device

* ``run`` (there, in the repository root, with ``carry=["artifacts/device"]``)::

      PYTHONPATH=artifacts/device/src python3 -P -m vpd.benchmarks.device_ablation run \\
          --pack artifacts/device --work artifacts/device_work --out "$OUT" --deadline-s 520

  (``-P``: the repository root's own ``vpd/`` folder is not the mapped package and must not shadow it)
  regenerates the dataset with the project's own generator (``make_dataset``, all cores), refuses to
  go on unless ``examples.jsonl`` is byte-identical to the packed one (same scenes, questions, answers
  and splits), reports how many images are pixel-identical (training and scoring both use the device's
  renders, so a PIL difference changes no label), pretrains ``--model`` (default ``student-m``) on the
  train scenes, then trains and scores the arms (``blind`` once, ``label`` and ``vpd`` for every seed)
  at each ``--budgets`` on the first ``--limit`` val questions — the CPU ablation's recipe at a larger
  size. Each finished stage is kept under ``--work`` (a rerun on the same warm machine resumes), no arm
  starts that the measured time per arm says would end past ``--deadline-s``, and ``OUT`` receives
  ``device_ablation.json`` (device, stage seconds, steps/s, pixel check, base detection) plus the
  ablation's ``ablation.{md,json,png}`` after every arm.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
import tomllib
from pathlib import Path
from typing import Any

from vpd.distill.image_overlap import file_sha256

PACK_LIMIT_BYTES = 64 * 1024 * 1024  # what one device call carries
SOURCE_SUFFIXES = (".py",)


def _setuptools_meta(repo: Path) -> dict[str, Any]:
    return tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]


def _package_dirs(repo: Path, meta: dict[str, Any] | None = None) -> dict[str, Path]:
    """``{package: folder}`` for every package ``pyproject.toml`` lists (package-dir mapping applied)."""
    meta = meta or _setuptools_meta(repo)
    mapping = meta.get("package-dir", {})
    out = {}
    for pkg in meta["packages"]:
        base = max((k for k in mapping if pkg == k or pkg.startswith(k + ".")), key=len, default=None)
        rest = pkg[len(base) + 1:].split(".") if base and pkg != base else []
        out[pkg] = repo.joinpath(mapping[base] if base else pkg.replace(".", "/"), *rest)
    return out


def copy_source(repo: Path, dest: Path) -> int:
    """Copy the packages' modules and package data to ``dest/vpd/…`` (importable with
    ``PYTHONPATH=dest``); returns the number of files."""
    meta = _setuptools_meta(repo)
    data_globs = meta.get("package-data", {})
    n = 0
    for pkg, folder in _package_dirs(repo, meta).items():
        target = dest.joinpath(*pkg.split("."))
        target.mkdir(parents=True, exist_ok=True)
        files = {f for f in folder.iterdir() if f.is_file() and f.suffix in SOURCE_SUFFIXES}
        for pattern in data_globs.get(pkg, []):
            files |= set(folder.glob(pattern))
        for f in sorted(files):
            shutil.copy2(f, target / f.name)
            n += 1
    return n


def _relative_lines(path: Path, dataset: Path) -> list[str]:
    """A mixture file's lines with each image path relative to ``dataset`` (error if one lies outside)."""
    root = dataset.resolve()
    out = []
    for i, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        rec = json.loads(line)
        img = Path(rec["image"])
        img = (img if img.is_absolute() else (path.parent / img)).resolve()
        if not img.is_relative_to(root):
            raise ValueError(f"{path}:{i + 1}: image {rec['image']} is not inside the dataset {dataset}")
        rec["image"] = img.relative_to(root).as_posix()
        out.append(json.dumps(rec, ensure_ascii=False))
    return out


def pack(dataset: Path, mixture: Path, out: Path, repo: Path | None = None) -> dict[str, Any]:
    """Write the carry folder ``out`` (see the module docstring); returns its ``pack.json``."""
    repo = repo or Path(__file__).resolve().parents[1]
    settings = json.loads((dataset / "dataset.json").read_text())
    if settings.get("generator") != "vpd.benchmarks.shapes":
        raise ValueError(f"{dataset}: only a `vpd data shapes` dataset can be regenerated on the device")
    if out.exists():
        shutil.rmtree(out)
    files = copy_source(repo, out / "src")
    (out / "mixture").mkdir(parents=True)
    counts = {}
    for name in ("train.jsonl", "val.jsonl"):
        if (mixture / name).is_file():
            lines = _relative_lines(mixture / name, dataset)
            (out / "mixture" / name).write_text("".join(x + "\n" for x in lines))
            counts[name] = len(lines)
    if not counts.get("train.jsonl"):
        raise ValueError(f"{mixture}: no train.jsonl lines to pack")
    images = {p.relative_to(dataset).as_posix(): file_sha256(p) for p in sorted((dataset / "images").glob("*.png"))}
    meta = {"generator": {k: settings[k] for k in ("seed", "n", "per_image", "split", "fractions", "overlap",
                                                    "noise", "difficulty", "version") if k in settings},
            "examples_sha256": file_sha256(dataset / "examples.jsonl"), "images_sha256": images,
            "mixture": str(mixture), "mixture_lines": counts, "source_files": files}
    (out / "pack.json").write_text(json.dumps(meta, indent=1) + "\n")
    size = sum(f.stat().st_size for f in out.rglob("*") if f.is_file())
    if size > PACK_LIMIT_BYTES:
        raise ValueError(f"{out} holds {size / 2**20:.1f} MiB, over the {PACK_LIMIT_BYTES // 2**20} MiB a call carries")
    return dict(meta, bytes=size)


class Report:
    """``OUT/device_ablation.json``, rewritten after every stage so a timed-out call still returns it."""

    def __init__(self, out: Path) -> None:
        self.path = out / "device_ablation.json"
        out.mkdir(parents=True, exist_ok=True)
        self.data: dict[str, Any] = {"stages": {}}

    def stage(self, name: str, **info: Any) -> None:
        self.data["stages"][name] = info
        self.path.write_text(json.dumps(self.data, indent=2) + "\n")
        print(f"[device_ablation] {name}: {json.dumps(info)}", flush=True)


def regenerate(pack_dir: Path, data: Path, workers: int) -> dict[str, Any]:
    """Regenerate the packed dataset in ``data`` (unless already there) and check it against the pack."""
    from vpd.benchmarks.shapes import make_dataset

    meta = json.loads((pack_dir / "pack.json").read_text())
    t0 = time.time()
    if not (data / "dataset.json").is_file() or file_sha256(data / "examples.jsonl") != meta["examples_sha256"]:
        g = meta["generator"]
        make_dataset(data, n=g["n"], seed=g["seed"], per_image=g["per_image"], split=g.get("split", "all"),
                     fractions=tuple(g.get("fractions", (0.8, 0.1, 0.1))), overlap=g.get("overlap", True),
                     noise=g.get("noise", True), difficulty=g.get("difficulty", "easy"), workers=workers)
    if file_sha256(data / "examples.jsonl") != meta["examples_sha256"]:
        raise SystemExit(f"{data}/examples.jsonl differs from the packed dataset's (generator version "
                         f"{meta['generator'].get('version')} here vs. the pack): the mixture's labels would not "
                         "match these scenes; pack again from this source")
    same = sum(file_sha256(data / rel) == h for rel, h in meta["images_sha256"].items() if (data / rel).is_file())
    return {"seconds": round(time.time() - t0, 1), "images": len(meta["images_sha256"]),
            "pixel_identical": same, "workers": workers}


def materialise_mixture(pack_dir: Path, data: Path, dest: Path) -> Path:
    """The packed mixture with image paths pointing into the regenerated ``data``."""
    dest.mkdir(parents=True, exist_ok=True)
    for f in sorted((pack_dir / "mixture").glob("*.jsonl")):
        recs = [json.loads(x) for x in f.read_text().splitlines() if x.strip()]
        (dest / f.name).write_text("".join(json.dumps(dict(r, image=str((data / r["image"]).resolve()))) + "\n"
                                           for r in recs))
    return dest


def device_info() -> dict[str, Any]:
    import jax

    d = jax.devices()[0]
    return {"platform": d.platform, "device": getattr(d, "device_kind", str(d)), "count": jax.device_count(),
            "jax": jax.__version__, "cpus": os.cpu_count()}


def run(a: argparse.Namespace) -> int:
    from vpd.benchmarks import ablation
    from vpd.benchmarks.ablation_data import held_out_examples, read_lines
    from vpd.distill.pretrain import pretrain, pretrain_config
    from vpd.distill.pretrain_tasks import parse_tasks

    t_start = time.time()
    work, out = a.work.resolve(), a.out.resolve()
    work.mkdir(parents=True, exist_ok=True)
    report = Report(out)
    report.data.update(device=device_info(), config={k: str(v) for k, v in vars(a).items()})
    report.stage("data", **regenerate(a.pack, work / "data", a.workers or os.cpu_count() or 1))
    mixture = materialise_mixture(a.pack, work / "data", work / "mixture")
    base = work / "base"
    if not (base / "pretrain.json").is_file():
        cfg = pretrain_config(steps=a.pretrain_steps, batch=a.pretrain_batch, lr=a.pretrain_lr,
                              loc_bins=a.loc_bins)
        res = pretrain(work / "data", base, cfg, preset=a.model, tasks=parse_tasks(a.pretrain_tasks),
                       eval_scenes=a.eval_scenes, progress=False)
        shutil.copy2(base / "pretrain.json", out / "pretrain.json")
    meta = json.loads((base / "pretrain.json").read_text())
    det = {k: v for k, v in meta.get("detection", {}).items() if k != "examples"}
    report.stage("pretrain", model=a.model, steps=meta["steps"], seconds=meta["seconds"],
                 steps_per_s=round(meta["steps"] / max(meta["seconds"], 1e-9), 2), final_loss=meta["final_loss"],
                 detection=det)

    argv = ["--mixture", str(mixture), "--test", str(work / "data"), "--split", "val", "--limit", str(a.limit),
            "--base", str(base), "--replay-pretrain", str(a.replay), "--steps", str(a.steps), "--batch", str(a.batch),
            "--lr", str(a.lr), "--budgets", a.budgets, "--seeds", str(a.seeds), "--arms", a.arms,
            "--one-seed-arms", a.one_seed_arms, "--out", str(work / "ablation")]
    args = ablation.build_parser().parse_args(argv)
    lines = read_lines(mixture)
    examples = held_out_examples(work / "data", "val", a.limit)
    one_seed = set(filter(None, a.one_seed_arms.split(",")))
    jobs = [(int(b), s, arm) for b in a.budgets.split(",") for s in range(a.seeds) for arm in a.arms.split(",")
            if s == 0 or arm not in one_seed]
    arm_seconds: list[float] = []
    done = skipped = 0
    for budget, seed, arm in jobs:
        run_dir = work / "ablation" / "runs" / f"b{budget}" / arm / f"s{seed}"
        if not (run_dir / "score.json").is_file():
            left = a.deadline_s - (time.time() - t_start)
            need = max(arm_seconds) if arm_seconds else 0.0
            if left < need * 1.1:
                skipped += 1
                continue
        t0 = time.time()
        r = ablation.run_arm(arm, budget, seed, args, lines, examples, run_dir)
        arm_seconds.append(time.time() - t0)
        done += 1
        modes = {m: round(100 * v["accuracy"], 1) for m, v in r["modes"].items()}
        report.stage(f"b{budget}/{arm}/s{seed}", accuracy=modes, steps=r.get("steps"),
                     train_seconds=r.get("train_seconds"), seconds=r.get("seconds"),
                     steps_per_s=round(r["steps"] / r["train_seconds"], 2) if r.get("train_seconds") else None)
        _report_ablation(argv, work, out)
    report.stage("done", arms_finished=done, arms_left=skipped, seconds=round(time.time() - t_start, 1),
                 resume="rerun the same command on the warm machine" if skipped else None)
    return 0


def _report_ablation(argv: list[str], work: Path, out: Path) -> None:
    """``ablation --report-only`` over the finished arms, copied into ``out``."""
    from vpd.benchmarks import ablation

    ablation.main(argv + ["--report-only"])
    for name in ("ablation.md", "ablation.json", "ablation.png"):
        if (work / "ablation" / name).is_file():
            shutil.copy2(work / "ablation" / name, out / name)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="cmd", required=True)
    p = sub.add_parser("pack", help="write the carry folder (here)")
    p.add_argument("--dataset", type=Path, required=True, help="the `vpd data shapes` folder the mixture was built on")
    p.add_argument("--mixture", type=Path, required=True, help="vpd mix folder (label + rationale lines)")
    p.add_argument("--out", type=Path, default=Path("artifacts/device"))
    r = sub.add_parser("run", help="regenerate, pretrain and run the arms (on the device)")
    r.add_argument("--pack", type=Path, default=Path("artifacts/device"))
    r.add_argument("--work", type=Path, default=Path("artifacts/device_work"), help="kept between warm calls")
    r.add_argument("--out", type=Path, required=True, help="report folder ($OUT on the device)")
    r.add_argument("--model", default="student-m")
    r.add_argument("--pretrain-steps", type=int, default=2000)
    r.add_argument("--pretrain-batch", type=int, default=64)
    r.add_argument("--pretrain-lr", type=float, default=1e-3)
    r.add_argument("--pretrain-tasks", default="caption=2,detect=3,boxes=2,describe=2")
    r.add_argument("--loc-bins", type=int, default=64, help="location-token bins per axis")
    r.add_argument("--eval-scenes", type=int, default=100, help="val scenes for the base's detection quality")
    r.add_argument("--arms", default="blind,label,vpd")
    r.add_argument("--one-seed-arms", default="blind")
    r.add_argument("--budgets", default="1000")
    r.add_argument("--seeds", type=int, default=3)
    r.add_argument("--steps", type=int, default=1600)
    r.add_argument("--batch", type=int, default=32)
    r.add_argument("--lr", type=float, default=1e-3)
    r.add_argument("--replay", type=int, default=2000, help="pretraining records replayed in every arm")
    r.add_argument("--limit", type=int, default=500, help="val questions scored")
    r.add_argument("--workers", type=int, default=0, help="processes rendering the dataset (0: all cores)")
    r.add_argument("--deadline-s", type=float, default=520.0,
                   help="start no arm that the slowest arm so far says would end after this many seconds")
    a = ap.parse_args(argv)
    if a.cmd == "pack":
        meta = pack(a.dataset, a.mixture, a.out)
        print(f"packed {meta['source_files']} source files, {meta['mixture_lines']} mixture lines and "
              f"{len(meta['images_sha256'])} image hashes into {a.out} ({meta['bytes'] / 2**20:.1f} MiB)")
        return 0
    return run(a)


if __name__ == "__main__":
    sys.exit(main())
