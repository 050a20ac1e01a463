"""MMBench: TSV loading, VLMEvalKit choice extraction, CircularEval edge cases, bad input."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from vpd.benchmarks.mmbench import MMBench, can_infer, rotate, encode_image_b64
from vpd.benchmarks.registry import DataFormatError, PredictionError, get_benchmark
from vpd.programs.sampler_base import Completion

COLS = ["index", "question", "hint", "A", "B", "C", "D", "answer", "category", "l2-category", "image"]


def write_tsv(path: Path, rows: list[dict], cols: list[str] = COLS) -> Path:
    with path.open("w", encoding="utf-8", newline="") as fh:
        w = csv.writer(fh, delimiter="\t")
        w.writerow(cols)
        for r in rows:
            w.writerow([r.get(c, "") for c in cols])
    return path


@pytest.fixture()
def tsv(tmp_path: Path) -> Path:
    img = encode_image_b64(Image.new("RGB", (8, 8), (200, 10, 10)))
    rows = [
        dict(index=0, question="What colour is it?", A="red", B="blue", C="green", D="yellow", answer="A",
             category="color", **{"l2-category": "attribute"}, image=img),
        dict(index=1, question="How many?", A="one", B="two", C="three", D="", answer="C",
             category="count", **{"l2-category": "attribute"}, image="0"),  # image: reference to row 0
        dict(index=2, question="Which shape?", hint="Look closely", A="cube", B="ball", C="", D="", answer="B",
             category="shape", **{"l2-category": "perception"}, image=img),
    ]
    return write_tsv(tmp_path / "mmb.tsv", rows)


def preds_file(path: Path, lines: list[dict]) -> Path:
    path.write_text("".join(json.dumps(l) + "\n" for l in lines))
    return path


def correct_lines(bench: MMBench, items) -> list[dict]:
    out = []
    for it in items:
        for v in it.raw["__variants__"]:
            out.append({"index": int(it.id), "rotation": v["rotation"], "prediction": f"{v['answer']}."})
    return out


def test_can_infer_follows_vlmevalkit_rules() -> None:
    ch = {"A": "red", "B": "blue", "C": "green", "D": "yellow"}
    assert can_infer("B", ch) == "B"
    assert can_infer("(C) green", ch) == "C"
    assert can_infer("The answer is D.", ch) == "D"
    assert can_infer("A or B", ch) is False  # two letters: ambiguous, then text: none
    assert can_infer("it is blue", ch) == "B"  # option text
    assert can_infer("red and blue", ch) is False  # two option texts
    assert can_infer("Cannot determine the answer", ch) == "Z"
    assert can_infer("Z", ch) == "Z"
    assert can_infer("purple", ch) is False


def test_rotation_moves_answer_with_its_option() -> None:
    opts = ("red", "blue", "green", "yellow")
    new, ans = rotate(opts, "A", 1)
    assert new == ("blue", "green", "yellow", "red") and ans == "D"
    new, ans = rotate(opts, "C", 2)
    assert new[ord(ans) - 65] == "green"


def test_circular_all_rotations_right_scores_one(tsv: Path, tmp_path: Path) -> None:
    b = MMBench()
    items = b.load(tsv)
    assert [len(it.raw["__variants__"]) for it in items] == [4, 3, 2]  # one rotation per option
    res = b.score_file(tsv, preds_file(tmp_path / "p.jsonl", correct_lines(b, items)))
    assert res.metrics["accuracy"] == 1.0 and res.metrics["vanilla_accuracy"] == 1.0
    assert res.counts["missing"] == 0


def test_circular_three_of_four_rotations_scores_zero(tsv: Path, tmp_path: Path) -> None:
    b = MMBench()
    items = b.load(tsv)
    lines = correct_lines(b, items)
    # item 0, rotation 3: answer is B there; say C instead
    for l in lines:
        if l["index"] == 0 and l["rotation"] == 3:
            l["prediction"] = "C"
    res = b.score_file(tsv, preds_file(tmp_path / "p.jsonl", lines))
    per = {r["id"]: r["correct"] for r in res.per_item}
    assert per == {"0": 0, "1": 1, "2": 1}
    assert res.metrics["accuracy"] == pytest.approx(2 / 3)
    assert res.metrics["vanilla_accuracy"] == 1.0  # rotation 0 was right
    assert res.slices["category"]["color"]["accuracy"] == 0.0
    assert res.slices["category"]["count"]["accuracy"] == 1.0
    assert res.slices["l2-category"]["attribute"] == {"accuracy": 0.5, "n": 2}


def test_missing_rotation_counts_wrong_and_extra_ids_are_listed(tsv: Path, tmp_path: Path) -> None:
    b = MMBench()
    items = b.load(tsv)
    lines = [l for l in correct_lines(b, items) if not (l["index"] == 2 and l["rotation"] == 1)]
    lines.append({"index": 99, "prediction": "A"})
    p = preds_file(tmp_path / "p.jsonl", lines)
    res = b.score_file(tsv, p)
    assert res.counts["missing"] == 1 and res.missing == ("2/1",)
    assert res.extra == ("99/0",)
    assert {r["id"]: r["correct"] for r in res.per_item}["2"] == 0
    with pytest.raises(PredictionError, match="missing"):
        b.score_file(tsv, p, strict=True)


def test_unparsed_answer_without_llm_is_wrong_and_llm_fallback_resolves(tsv: Path, tmp_path: Path) -> None:
    class FakeSampler:
        def __init__(self) -> None:
            self.prompts: list[str] = []

        def generate(self, prompts, **kw):
            self.prompts += prompts
            return [[Completion(text=" A", prompt_tokens=1, completion_tokens=1, error=None)] for _ in prompts]

    b = MMBench(circular=False)
    items = b.load(tsv)
    lines = [{"index": 0, "prediction": "it is the colour of blood"}, {"index": 1, "prediction": "C"},
             {"index": 2, "prediction": "B"}]
    p = preds_file(tmp_path / "p.jsonl", lines)
    assert b.score_file(tsv, p).per_item[0]["correct"] == 0
    fake = FakeSampler()
    res = MMBench(circular=False, sampler=fake).score_file(tsv, p)
    assert res.per_item[0]["correct"] == 1 and res.counts["llm_matches"] == 1
    assert "blood" in fake.prompts[0] and "A. red" in fake.prompts[0]


def test_missing_column_is_a_clear_error(tmp_path: Path) -> None:
    cols = [c for c in COLS if c != "A"]
    p = write_tsv(tmp_path / "bad.tsv", [dict(index=0, question="q", B="x", answer="B")], cols)
    with pytest.raises(DataFormatError, match="missing column.*A"):
        MMBench().load(p)


def test_bad_answer_letter_names_the_row(tmp_path: Path) -> None:
    p = write_tsv(tmp_path / "bad.tsv", [dict(index=0, question="q", A="x", B="y", answer="A"),
                                          dict(index=7, question="q", A="x", B="y", answer="D")])
    with pytest.raises(DataFormatError, match=r"row 3 \(index 7\)"):
        MMBench().load(p)


def test_undecodable_base64_names_the_row(tmp_path: Path) -> None:
    p = write_tsv(tmp_path / "bad.tsv", [dict(index=5, question="q", A="x", B="y", answer="A", image="!!notbase64!!")])
    b = MMBench()
    items = b.load(p)  # scoring never decodes images
    with pytest.raises(DataFormatError, match=r"row 2 \(index 5\).*base64"):
        b.image_path(items[0], tmp_path)


def test_images_decode_and_references_resolve(tsv: Path, tmp_path: Path) -> None:
    b = MMBench()
    items = b.load(tsv)
    exs = b.to_examples(items, tmp_path / "imgs")
    assert len(exs) == 9
    ex = next(e for e in exs if e.metadata["key"] == {"index": 1, "rotation": 0})
    assert Image.open(ex.image).getpixel((0, 0)) == (200, 10, 10)  # row 1 refers to row 0's image
    assert ex.choices == ("one", "two", "three") and ex.question == "How many?"


def test_prerotated_rows_are_used_as_rotations(tmp_path: Path) -> None:
    rows = [dict(index=3, question="q", A="x", B="y", answer="A"),
            dict(index=1_000_003, question="q", A="y", B="x", answer="B")]
    p = write_tsv(tmp_path / "c.tsv", rows)
    b = MMBench()
    items = b.load(p)
    assert len(items) == 1 and [v["answer"] for v in items[0].raw["__variants__"]] == ["A", "B"]
    preds = preds_file(tmp_path / "p.jsonl", [{"index": 3, "prediction": "A"}, {"index": 1_000_003, "prediction": "A"}])
    assert b.score_file(p, preds).metrics["accuracy"] == 0.0


def test_submission_tsv_has_one_row_per_rotation(tsv: Path, tmp_path: Path) -> None:
    b = get_benchmark("mmbench")
    items = b.load(tsv)
    preds, _ = b.read_predictions(preds_file(tmp_path / "p.jsonl", correct_lines(b, items)))
    out = b.write_submission(items, preds, tmp_path / "sub.tsv")
    rows = list(csv.DictReader(out.open(), delimiter="\t"))
    assert len(rows) == 9
    r = next(r for r in rows if r["index"] == str(1_000_000))
    assert (r["A"], r["D"], r["answer"], r["extracted"]) == ("blue", "red", "D", "D")
