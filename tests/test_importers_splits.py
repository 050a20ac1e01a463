"""`vpd data import` beyond one labelled file: GQA's chunked ``train_all_questions/`` (read chunk by
chunk) and the official test splits published without answers (imported unlabelled, not as bad
records, and usable by `vpd synth --no-labels`). Fixtures in tests/fixtures/importers/, written
from the releases' documented formats."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from vpd.benchmarks.importers import ImportSourceError, run_import
from vpd.benchmarks.importers import gqa as gqa_module
from vpd.benchmarks.importers.base import ImportContext
from vpd.cli import app
from vpd.datasets import read_examples

FIXTURES = Path(__file__).parent / "fixtures" / "importers"
CHUNKS = FIXTURES / "gqa" / "train_all_questions"
#: Image files the fixtures name that exist (the others are missing on purpose).
IMAGES = ["images/2354786.jpg", "test2015/COCO_test2015_000000000001.jpg", "test2017/000000000016.jpg"]


@pytest.fixture()
def image_root(tmp_path: Path) -> Path:
    root = tmp_path / "images_root"
    for i, rel in enumerate(IMAGES):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (64, 48), (60 * i, 120, 200)).save(root / rel, format="JPEG")
    return root


def _import(name: str, source: Path | str, split: str, out: Path, images: Path):
    lines: list[str] = []
    report = run_import(name, source, split=split, out=out, images=images, on_bad=lambda b: lines.append(b.line()))
    examples, bad_lines = read_examples(out)
    assert bad_lines == [] and len(examples) == report.examples
    saved = json.loads((out / "import_report.json").read_text())
    assert saved["unlabelled"] == report.unlabelled and saved["unlabelled_split"] == report.unlabelled_split
    return report, {e.id: e for e in examples}, lines


# -- GQA train_all_questions chunks -------------------------------------------------------------

GQA_GOOD = {"00311245": "wood", "00311246": "yes", "00311249": "left", "00311251": "dog"}
GQA_BAD = {"00311247": "no answer", "00311248": "malformed record", "00311250": "missing image"}


@pytest.mark.parametrize("source", [CHUNKS, str(CHUNKS / "train_all_questions_*.json"), FIXTURES / "gqa"],
                         ids=["chunk-folder", "glob", "release-folder"])
def test_gqa_chunks(source: Path | str, tmp_path: Path, image_root: Path) -> None:
    report, ex, lines = _import("gqa", source, "train", tmp_path / "out", image_root)
    assert {k: e.answer for k, e in ex.items()} == GQA_GOOD
    assert list(ex) == list(GQA_GOOD)  # chunk 0's questions, then chunk 1's
    e = ex["00311245"]
    assert e.metadata["is_balanced"] is False and e.metadata["full_answer"] == "The table is made of wood."
    assert e.metadata["detailed"] == "materialVerify" and Path(e.image).is_file()
    assert report.labelled == 4 and report.unlabelled == 0 and not report.unlabelled_split
    assert {b.record_id: b.reason for b in report.bad} == GQA_BAD
    by_id = {b.record_id: b for b in report.bad}
    assert by_id["00311247"].file == "train_all_questions_0.json"
    assert by_id["00311250"].file == "train_all_questions_1.json"
    assert by_id["00311250"].record["fullAnswer"] == "No, the sky is clear."  # original fields kept
    assert lines == [b.line() for b in report.bad] and len(lines) == 3
    assert "bad record 00311250 (train_all_questions_1.json): missing image: no file at" in lines[2]


def test_gqa_reads_one_chunk_at_a_time(tmp_path: Path, image_root: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    loaded: list[str] = []
    real = gqa_module.load_json

    def spy(path: Path):  # the real loader, recording the order of calls
        loaded.append(path.name)
        return real(path)

    monkeypatch.setattr(gqa_module, "load_json", spy)
    ctx = ImportContext(source=CHUNKS, split="train", out=tmp_path, images=image_root)
    records = gqa_module.read_gqa(ctx)
    first = next(records)
    assert first.id == "00311245" and loaded == ["train_all_questions_0.json"]
    ids = [first.id] + [r.record_id if hasattr(r, "record_id") else r.id for r in records]
    assert ids[:4] == ["00311245", "00311246", "00311247", "00311248"]
    assert loaded == ["train_all_questions_0.json", "train_all_questions_1.json"]


def test_gqa_chunk_order_and_errors(tmp_path: Path) -> None:
    folder = tmp_path / "train_all_questions"
    folder.mkdir()
    for i in (10, 2, 9):
        (folder / f"train_all_questions_{i}.json").write_text("{}")
    ctx = ImportContext(source=folder, split="train", out=tmp_path / "o")
    assert [p.name for p in gqa_module.gqa_files(ctx)] == [f"train_all_questions_{i}.json" for i in (2, 9, 10)]
    (folder / "train_all_questions_9.json").write_text('{"1": {"question": "Is it')  # a truncated chunk
    with pytest.raises(ImportSourceError, match="train_all_questions_9.json: not readable JSON"):
        run_import("gqa", folder, split="train", out=tmp_path / "o")
    assert not (tmp_path / "o" / "examples.jsonl").exists()
    with pytest.raises(ImportSourceError, match="no file matches"):
        run_import("gqa", str(folder / "val_all_questions_*.json"), split="val", out=tmp_path / "o2")


# -- test splits without answers ----------------------------------------------------------------

def test_vqav2_test_questions_only(tmp_path: Path, image_root: Path) -> None:
    report, ex, lines = _import("vqav2", FIXTURES / "vqav2_test", "test", tmp_path / "out", image_root)
    assert sorted(ex) == ["1000", "1001"]
    for e in ex.values():
        assert e.answer is None and "answers" not in e.metadata and e.metadata["split"] == "test"
        assert e.image.endswith("test2015/COCO_test2015_000000000001.jpg")
    assert report.unlabelled_split and report.labelled == 0 and report.unlabelled == 2
    assert report.bad_by_reason == {"malformed record": 1, "missing image": 1}  # no "no answer"
    assert not any("no answer" in line for line in lines)
    report, ex, _ = _import("vqav2", FIXTURES / "vqav2_test", "test-dev", tmp_path / "dev", image_root)
    assert list(ex) == ["1000"] and ex["1000"].answer is None and report.unlabelled == 1 and not report.bad


def test_labelled_split_without_answers_is_still_bad(tmp_path: Path) -> None:
    with pytest.raises(ImportSourceError, match="no file matching"):  # val needs its annotations file
        run_import("vqav2", FIXTURES / "vqav2_test", split="val", out=tmp_path / "o")


def test_aokvqa_test_unlabelled(tmp_path: Path, image_root: Path) -> None:
    report, ex, _ = _import("aokvqa", FIXTURES / "aokvqa", "test", tmp_path / "out", image_root)
    assert sorted(ex) == ["228DnqBAwNcLUQ4Gsgajxw", "22h3Y4BYgLt3sbqtUEQWs5"]
    e = ex["22h3Y4BYgLt3sbqtUEQWs5"]
    assert e.answer is None and e.choices == ("rain", "flood", "street cleaning", "a spill")
    assert "answers" not in e.metadata and "rationales" not in e.metadata and "answer_text" not in e.metadata
    assert e.metadata["difficult_direct_answer"] is True
    assert report.unlabelled_split and report.unlabelled == 2 and report.labelled == 0
    assert {b.record_id: b.reason for b in report.bad} == {"24aZhyBFmr6ubTRTzAFWpn": "missing image",
                                                           "25uz6vKtfACRHTdwBnLgqc": "malformed record"}


def test_mmbench_test_tsv_without_answer_column(tmp_path: Path) -> None:
    with (FIXTURES / "mmbench" / "MMBench_DEV_EN.tsv").open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    fields = [f for f in rows[0] if f != "answer"]
    src = tmp_path / "release"
    src.mkdir()
    with (src / "MMBench_TEST_EN.tsv").open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=fields, delimiter="\t", extrasaction="ignore")
        writer.writeheader()
        writer.writerows(rows)
    report = run_import("mmbench", src, split="test", out=tmp_path / "out")
    examples, _ = read_examples(tmp_path / "out")
    assert report.unlabelled_split and report.examples == 3 and report.unlabelled == 3
    assert all(e.answer is None for e in examples) and "no answer" not in report.bad_by_reason
    assert report.bad_by_reason == {"missing image": 1}  # the dev fixture's row without an image


COUNT = "    objects = image_patch.find('object')\n    return str(len(objects))\n"


def test_unlabelled_import_feeds_synth_no_labels(tmp_path: Path, image_root: Path) -> None:
    runner = CliRunner()
    data = tmp_path / "vqav2-test"
    res = runner.invoke(app, ["data", "import", "vqav2", "--from", str(FIXTURES / "vqav2_test"), "--split", "test",
                              "--out", str(data), "--images", str(image_root)])
    assert res.exit_code == 0, res.output
    assert "unlabelled split: the vqav2 test release has no answers; 2 examples" in res.output
    assert "vpd synth --no-labels --split test" in res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["unlabelled_split"] is True and summary["unlabelled"] == 2 and summary["labelled"] == 0
    examples, _ = read_examples(data)
    rec = tmp_path / "rec.jsonl"  # recorded completions (the replay sampler): one real program per question
    rec.write_text("".join(json.dumps({"question": e.question, "choices": None, "completions": [COUNT]}) + "\n"
                           for e in examples))
    run = tmp_path / "run"
    res = runner.invoke(app, ["synth", "--data", str(data), "--out", str(run), "--llm", f"replay:{rec}",
                              "--no-labels", "--split", "test", "--fewshot", "fixed", "--cache", "memory",
                              "--workers", "1", "--quiet"])
    assert res.exit_code == 0, (res.output, res.exception)
    preds = [json.loads(line) for line in (run / "predictions.jsonl").read_text().splitlines()]
    assert sorted(p["id"] for p in preds) == ["1000", "1001"]
    assert all(p["prediction"] is not None and p["prediction"].isdigit() for p in preds)
    assert all(p["example"]["answer"] is None for p in preds)
