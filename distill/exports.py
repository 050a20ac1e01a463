"""Exports of a mixture folder for other trainers.

* ``hf`` — a Hugging Face :class:`datasets.DatasetDict` (splits ``train``/``val``) written with
  ``save_to_disk`` (load with ``datasets.load_from_disk``), plus ``parquet/{split}.parquet``;
* ``llava`` — LLaVA's conversation JSON, one file per split: a list of ``{"id", "image",
  "conversations": [{"from": "human", "value": "<image>\\n{prefix}"}, {"from": "gpt", "value":
  suffix}]}`` (``image`` absolute, or relative to ``--image-folder`` when given).

The prefix/suffix JSONL of ``vpd mix`` is itself the native export.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from vpd.distill.mixture import read_mixture

IMAGE_TOKEN = "<image>"
COLUMNS = ("id", "image", "prefix", "suffix", "task", "source", "weight", "example_id")
EXPORTERS = ("jsonl", "hf", "parquet", "llava")


def _splits(ds: Path) -> list[str]:
    return [s for s in ("train", "val") if (ds / f"{s}.jsonl").is_file()]


def _columns(records: list[dict[str, Any]]) -> dict[str, list[Any]]:
    cols: dict[str, list[Any]] = {c: [] for c in COLUMNS}
    for r in records:
        for c in COLUMNS:
            v = r.get(c)
            cols[c].append(float(v) if c == "weight" and v is not None else ("" if v is None else v))
    return cols


def export_hf(ds: str | Path, out: str | Path, *, parquet: bool = True) -> Path:
    """``save_to_disk`` a DatasetDict of the mixture (and Parquet files); returns ``out``."""
    import datasets

    ds, out = Path(ds), Path(out)
    features = datasets.Features({c: datasets.Value("float32" if c == "weight" else "string") for c in COLUMNS})
    splits = {s: datasets.Dataset.from_dict(_columns(read_mixture(ds, s)), features=features) for s in _splits(ds)}
    if not splits:
        raise FileNotFoundError(f"no train.jsonl/val.jsonl in {ds}")
    dd = datasets.DatasetDict(splits)
    dd.save_to_disk(str(out))
    if parquet:
        (out / "parquet").mkdir(parents=True, exist_ok=True)
        for s, d in splits.items():
            d.to_parquet(str(out / "parquet" / f"{s}.parquet"))
    return out


def llava_record(rec: dict[str, Any], image_folder: str | Path | None = None) -> dict[str, Any]:
    """One mixture record as a LLaVA conversation (the ``<image>`` token opens the first human turn)."""
    image = str(rec["image"])
    if image_folder is not None:
        try:
            image = os.path.relpath(image, str(image_folder))
        except ValueError:
            pass
    return {
        "id": str(rec["id"]), "image": image,
        "conversations": [{"from": "human", "value": f"{IMAGE_TOKEN}\n{rec['prefix']}"},
                          {"from": "gpt", "value": str(rec["suffix"])}],
    }


def export_llava(ds: str | Path, out: str | Path, *, image_folder: str | Path | None = None) -> list[Path]:
    """Write ``out/llava_{split}.json`` for each split; returns the files."""
    ds, out = Path(ds), Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for s in _splits(ds):
        path = out / f"llava_{s}.json"
        path.write_text(json.dumps([llava_record(r, image_folder) for r in read_mixture(ds, s)],
                                   ensure_ascii=False, indent=1))
        files.append(path)
    if not files:
        raise FileNotFoundError(f"no train.jsonl/val.jsonl in {ds}")
    return files


def export(ds: str | Path, fmt: str, out: str | Path, **options: Any) -> Any:
    """Export ``ds`` as ``fmt`` (one of :data:`EXPORTERS`) to ``out``."""
    if fmt == "hf":
        return export_hf(ds, out, parquet=True)
    if fmt == "parquet":
        import datasets

        Path(out).mkdir(parents=True, exist_ok=True)
        paths = []
        for s in _splits(Path(ds)):
            d = datasets.Dataset.from_dict(_columns(read_mixture(ds, s)))
            p = Path(out) / f"{s}.parquet"
            d.to_parquet(str(p))
            paths.append(p)
        return paths
    if fmt == "llava":
        return export_llava(ds, out, **options)
    if fmt == "jsonl":
        import shutil

        Path(out).mkdir(parents=True, exist_ok=True)
        return [shutil.copy(Path(ds) / f"{s}.jsonl", Path(out) / f"{s}.jsonl") for s in _splits(Path(ds))]
    raise ValueError(f"unknown export format {fmt!r} (known: {', '.join(EXPORTERS)})")
