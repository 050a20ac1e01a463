"""Exports: LLaVA conversation schema and Hugging Face save_to_disk / Parquet round trips."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from vpd.cli import app
from vpd.distill.exports import export, export_hf, export_llava

runner = CliRunner()


@pytest.fixture()
def ds(tmp_path):
    d = tmp_path / "ds"
    d.mkdir()
    train = [{"id": f"r/label/{i}", "image": f"/data/images/{i}.png", "prefix": f"Wie viele Würfel? 🚗 {i}\nAnswer with a single word or phrase.",
              "suffix": str(10 ** 30 + i), "task": "label", "source": "r", "weight": 1.0, "example_id": str(i)} for i in range(5)]
    train.append({"id": "r/rationale/0", "image": "/data/images/0.png", "prefix": "How many?\nExplain the rationale to answer the question.",
                  "suffix": "There is one cube, at 1 2 3 4. So the answer is 1.", "task": "rationale", "source": "r",
                  "weight": 2.5, "example_id": "0"})
    val = [{**train[0], "id": "r/label/v", "image": "/data/images/v.png"}]
    (d / "train.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in train))
    (d / "val.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in val))
    return d, train, val


def test_llava_schema(ds, tmp_path):
    d, train, val = ds
    files = export_llava(d, tmp_path / "llava")
    data = json.loads(files[0].read_text())
    assert files[0].name == "llava_train.json" and len(data) == len(train)
    for rec, src in zip(data, train):
        assert set(rec) == {"id", "image", "conversations"}
        assert rec["id"] == src["id"] and rec["image"] == src["image"]
        conv = rec["conversations"]
        assert [c["from"] for c in conv] == ["human", "gpt"]
        assert conv[0]["value"] == "<image>\n" + src["prefix"]
        assert conv[0]["value"].count("<image>") == 1
        assert conv[1]["value"] == src["suffix"]
    rel = json.loads(export_llava(d, tmp_path / "rel", image_folder="/data")[0].read_text())
    assert rel[0]["image"] == "images/0.png"


def test_hf_save_to_disk_and_parquet_round_trip(ds, tmp_path):
    import datasets

    d, train, val = ds
    out = export_hf(d, tmp_path / "hf")
    dd = datasets.load_from_disk(str(out))
    assert set(dd.keys()) == {"train", "val"}
    assert dd["train"].num_rows == len(train) and dd["val"].num_rows == 1
    back = dd["train"].to_list()
    for a, b in zip(back, train):
        assert a["prefix"] == b["prefix"] and a["suffix"] == b["suffix"] and a["weight"] == pytest.approx(b["weight"])
    pq = datasets.load_dataset("parquet", data_files=str(out / "parquet" / "train.parquet"), split="train")
    assert pq.to_list()[-1]["suffix"] == train[-1]["suffix"]


def test_export_cli_and_unknown_format(ds, tmp_path):
    d, train, val = ds
    res = runner.invoke(app, ["export", str(d), "--to", "parquet", "--out", str(tmp_path / "pq")])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "pq" / "train.parquet").is_file()
    with pytest.raises(ValueError, match="unknown export format"):
        export(d, "csv", tmp_path / "x")
    with pytest.raises(FileNotFoundError):
        export_llava(tmp_path / "nothing", tmp_path / "y")
