"""`vpd data import`: each official release format (fixtures in tests/fixtures/importers/, written
from the formats' documentation) into examples.jsonl, labels kept, bad records reported."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from vpd.benchmarks.importers import ImportSourceError, importer_names, run_import
from vpd.datasets import read_examples

FIXTURES = Path(__file__).parent / "fixtures" / "importers"

#: Image files the fixtures name that exist (the others are missing on purpose).
IMAGES = ["val2014/COCO_val2014_000000000042.jpg", "images/2354786.jpg", "val2017/000000461751.jpg",
          "train2014/COCO_train2014_000000000042.jpg", "VG_100K_2/2354786.jpg", "images/1609184223.jpg",
          "val2014/COCO_val2014_000000310196.jpg"]


@pytest.fixture()
def image_root(tmp_path: Path) -> Path:
    root = tmp_path / "images_root"
    for i, rel in enumerate(IMAGES):
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        Image.new("RGB", (8, 6), (30 * i, 90, 160)).save(root / rel, format="JPEG")
    return root


def _run(name: str, split: str, tmp_path: Path, images: Path):
    out = tmp_path / f"out-{name}"
    lines: list[str] = []
    report = run_import(name, FIXTURES / name, split=split, out=out, images=images, on_bad=lambda b: lines.append(b.line()))
    examples, bad_lines = read_examples(out)
    assert bad_lines == []
    saved = json.loads((out / "import_report.json").read_text())
    assert saved["examples"] == report.examples == len(examples)
    assert [b["record_id"] for b in saved["bad_records"]] == [b.record_id for b in report.bad]
    assert len(lines) == len(report.bad)
    return report, {e.id: e for e in examples}, lines


def test_registry_lists_every_release() -> None:
    assert importer_names() == ["aokvqa", "gqa", "mmbench", "ocrvqa", "okvqa", "pope", "tallyqa", "vqav2"]


def test_vqav2(tmp_path: Path, image_root: Path) -> None:
    report, ex, lines = _run("vqav2", "val", tmp_path, image_root)
    assert sorted(ex) == ["42000", "42001"]
    e = ex["42001"]
    assert e.answer == "frisbee" and len(e.metadata["answers"]) == 10
    assert e.metadata["answers"][4] == "Frisbee!" and e.metadata["answer_type"] == "other"
    assert Path(e.image).is_file() and Path(e.image).is_absolute()
    assert report.labelled == 2 and report.multi_answer == 2
    assert report.bad_by_reason == {"malformed record": 1, "missing image": 1, "no answer": 1}
    assert {b.record_id: b.reason for b in report.bad}["73000"] == "missing image"
    assert any("42002" in line and "no answer" in line for line in lines)


def test_okvqa_majority_answer(tmp_path: Path, image_root: Path) -> None:
    report, ex, _ = _run("okvqa", "val", tmp_path, image_root)
    assert list(ex) == ["420005"]
    assert ex["420005"].answer == "race"  # 4 of 10; no multiple_choice_answer in OK-VQA
    assert ex["420005"].metadata["answers"].count("motocross") == 2
    assert [(b.record_id, b.reason) for b in report.bad] == [("420006", "no answer")]


def test_gqa(tmp_path: Path, image_root: Path) -> None:
    report, ex, _ = _run("gqa", "val", tmp_path, image_root)
    assert sorted(ex) == ["201307251", "201640614"]
    e = ex["201307251"]
    assert e.answer == "yes" and e.metadata["full_answer"] == "Yes, the table is made of wood."
    assert e.metadata["structural"] == "verify" and e.metadata["image_id"] == "2354786"
    assert {b.record_id: b.reason for b in report.bad} == {"05515938": "missing image", "07333408": "no answer"}


def test_aokvqa(tmp_path: Path, image_root: Path) -> None:
    report, ex, _ = _run("aokvqa", "val", tmp_path, image_root)
    e = ex["22jbM6gDxdaMaunuzgrsBB"]
    assert e.answer == "D" and e.choices == ("toothpick", "food", "popsicle stick", "cigarette")
    assert e.metadata["answer_text"] == "cigarette" and e.metadata["answers"].count("cigarette") == 9
    assert len(e.metadata["rationales"]) == 3
    assert ex["2mXhsDdAhKJqM2FiGTFaSe"].answer == "B"
    assert {b.record_id: b.reason for b in report.bad} == {"3pAnCbCkQuWrkkd5Gp87Qw": "no answer",
                                                           "4ccTPDsCFHm5Vk8Zj2oH8k": "missing image"}


def test_tallyqa(tmp_path: Path, image_root: Path) -> None:
    report, ex, _ = _run("tallyqa", "test", tmp_path, image_root)
    assert ex["30001"].answer == "2" and ex["30001"].metadata["issimple"] is True
    assert ex["30002"].answer == "0" and ex["30002"].metadata["data_source"] == "tdiuc_templates"
    assert ex["30002"].qtype == "count"
    assert {b.record_id: b.reason for b in report.bad} == {"30003": "no answer", "30004": "missing image"}


def test_ocrvqa_split_codes(tmp_path: Path, image_root: Path) -> None:
    report, ex, lines = _run("ocrvqa", "train", tmp_path, image_root)
    assert sorted(ex) == ["1609184223_0", "1609184223_1", "1609184223_2"]
    assert ex["1609184223_0"].answer == "Sandra Boynton" and ex["1609184223_2"].answer == "No"
    assert ex["1609184223_1"].metadata["genre"] == "Calendars"
    assert {b.record_id: b.reason for b in report.bad} == {"0140449132": "unknown split", "0307387895": "missing image"}
    assert any("0140449132" in line and "split 5" in line for line in lines)


def test_pope(tmp_path: Path, image_root: Path) -> None:
    report, ex, _ = _run("pope", "random", tmp_path, image_root)
    assert {k: e.answer for k, e in ex.items()} == {"random/1": "yes", "random/2": "no"}
    assert report.bad_by_reason == {"malformed record": 1, "no answer": 1}


def test_mmbench_decodes_images(tmp_path: Path, image_root: Path) -> None:
    report, ex, _ = _run("mmbench", "dev", tmp_path, image_root)
    assert sorted(ex) == ["0", "1"]
    e0, e1 = ex["0"], ex["1"]
    assert e0.question == "Hint: The picture is a flat colour.\nWhat color is the square?"
    assert e0.answer == "A" and e0.choices == ("red", "green", "blue", "yellow")
    assert e1.choices == ("yes", "no") and e1.answer == "B"
    with Image.open(e1.image) as img:  # row 1 refers to row 0's image
        assert img.getpixel((0, 0)) == (255, 0, 0)
    assert {b.record_id: b.reason for b in report.bad} == {"2": "no answer", "3": "missing image"}


def test_unknown_split_and_missing_release(tmp_path: Path) -> None:
    with pytest.raises(ImportSourceError, match="unknown split 'dev' for vqav2"):
        run_import("vqav2", FIXTURES / "vqav2", split="dev", out=tmp_path / "o")
    with pytest.raises(ImportSourceError, match="no file matching"):
        run_import("gqa", FIXTURES / "vqav2", split="val", out=tmp_path / "o2")
    assert not (tmp_path / "o2" / "examples.jsonl").exists()


def test_cli_prints_a_line_per_bad_record(tmp_path: Path, image_root: Path) -> None:
    from vpd.cli import app

    out = tmp_path / "cli"
    res = CliRunner().invoke(app, ["data", "import", "tallyqa", "--from", str(FIXTURES / "tallyqa"), "--split", "test",
                                   "--out", str(out), "--images", str(image_root)])
    assert res.exit_code == 0, res.output
    assert "bad record 30003 (test.json): no answer: answer 'many' is not a non-negative integer" in res.output
    assert "bad record 30004 (test.json): missing image" in res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["examples"] == 2 and summary["bad"] == 2
    res = CliRunner().invoke(app, ["data", "import", "tallyq", "--from", ".", "--split", "test", "--out", str(out)])
    assert res.exit_code != 0 and "did you mean 'tallyqa'" in res.output
