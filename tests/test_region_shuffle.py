"""Per-sample LSKD region shuffling at training time (vpd.distill.region_shuffle + the trainer hook)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from vpd.distill.region_shuffle import RegionShuffler, fresh_mapping, rewrite_ids
from vpd.distill.regions_draw import PALETTE
from vpd.distill.vlm_tokenizer import train_bpe
from vpd.distill.vlm_train import batch_rows, tokenize_mixture

SIZE = 128  # image side = model side, so the drawn outline survives the resize exactly
BOXES = {0: (8, 30, 38, 60), 1: (50, 70, 80, 100), 2: (92, 30, 122, 60)}  # x0 y0 x1 y1, no overlaps
PREFIX = ("How many shapes lie between [0] and [2]? Regions: [0] red square, [1] blue circle, [2] green square."
          "\nAnswer the question and explain the rationale.")
SUFFIX = "[0] is at x 8 and [2] at x 92, and [1] is at x 50 between them. So the answer is 1."
_REF = re.compile(r"\[(\d+)\]")


@pytest.fixture()
def mixture(tmp_path: Path) -> list[dict]:
    img = Image.new("RGB", (SIZE, SIZE), (255, 255, 255))
    img.save(tmp_path / "clean.png")
    refs = [{"name": str(k), "boxes": [list(b)]} for k, b in BOXES.items()]
    lskd = {"id": "run/lskd/0", "image": str(tmp_path / "clean.png"), "prefix": PREFIX, "suffix": SUFFIX,
            "task": "lskd", "source": "run", "weight": 1.0, "example_id": "0",
            "regions": {"image": str(tmp_path / "clean.png"), "references": refs}}
    old = {**lskd, "id": "run/lskd/1", "regions": None}  # a mixture made before rows carried regions
    labels = [{"id": f"run/label/{i}", "image": str(tmp_path / "clean.png"), "prefix": f"Is there a cube {i}?\n"
               "Answer with a single word or phrase.", "suffix": "yes", "task": "label", "source": "run",
               "weight": 1.0, "example_id": str(i)} for i in range(2)]
    return [lskd, old, *labels]


def _tok(records):
    return train_bpe([r["prefix"] + "\n" + r["suffix"] for r in records] * 3, vocab_size=400)


def _aligned(old: str, new: str) -> dict[int, int]:
    """old id -> new id read off two texts position by position; fails if one id maps two ways."""
    a, b = [int(k) for k in _REF.findall(old)], [int(k) for k in _REF.findall(new)]
    assert len(a) == len(b), (old, new)
    out: dict[int, int] = {}
    for x, y in zip(a, b):
        assert out.setdefault(x, y) == y, f"[{x}] became both [{out[x]}] and [{y}]"
    return out


def test_mapping_is_a_bijection_and_rewrites_in_one_pass():
    m = fresh_mapping([0, 4, 7], np.random.default_rng(3))
    assert sorted(m) == [0, 4, 7] and len(set(m.values())) == 3 and all(0 <= v < 8 for v in m.values())
    assert rewrite_ids("[0] and [1] then [0]", {0: 1, 1: 0}) == "[1] and [0] then [1]"  # no double rewrite


def test_region_ids_differ_between_epochs_and_stay_consistent(mixture):
    tok = _tok(mixture)
    data = tokenize_mixture(mixture, tok, SIZE, 64, 48)
    sh = RegionShuffler.from_records(mixture, data.ids, data.tasks, tok, image_size=SIZE, max_prefix=64,
                                     max_suffix=48, seed=0)
    assert len(sh) == 1 and sh.skipped == 1  # the row without regions is left alone and counted
    row = data.ids.index("run/lskd/0")
    n, gb = len(data), 2
    seen = []
    for epoch in range(2):  # the step of each epoch whose batch holds the LSKD row
        for step in range(epoch * n // gb, (epoch + 1) * n // gb):
            rows = batch_rows(n, gb, step, seed=0)
            if row in rows.tolist():
                batch = sh.apply(data.batch(rows), rows, step)
                j = rows.tolist().index(row)
                text = tok.decode(batch["tokens"][j][batch["valid"][j]].tolist())
                prefix_new = tok.decode(batch["tokens"][j][batch["valid"][j] & ~batch["suffix"][j]].tolist())
                suffix_new = tok.decode(batch["tokens"][j][batch["suffix"][j]].tolist())
                seen.append((text, prefix_new, suffix_new, batch["pixels"][j]))
                # other rows are untouched
                for k, r in enumerate(rows.tolist()):
                    if r != row:
                        np.testing.assert_array_equal(batch["tokens"][k], data.tokens[r])
    assert len(seen) == 2
    maps = []
    for text, p, s, pixels in seen:
        mp, ms = _aligned(PREFIX, p), _aligned(SUFFIX, s)
        assert all(ms[k] == mp[k] for k in ms), "prefix and suffix disagree on an id"
        assert len(set(mp.values())) == 3
        # the rest of the text is unchanged
        assert _REF.sub("[#]", p).split() == _REF.sub("[#]", PREFIX).split()
        assert "So the answer is 1." in s
        # the drawing follows the new ids: region k's outline has the colour of its new id's rank
        rgb = np.rint((pixels + 1.0) * 127.5).astype(int)
        order = sorted(mp.values())
        for k, (x0, y0, x1, y1) in BOXES.items():
            assert tuple(rgb[(y0 + y1) // 2, x0]) == PALETTE[order.index(mp[k])], k
        maps.append(mp)
    assert maps[0] != maps[1], "the same ids in two epochs: not shuffled per sample"


def test_trainer_shuffles_lskd_rows_by_default_and_can_switch_off(mixture, tmp_path, monkeypatch):
    from vpd.distill import region_shuffle
    from vpd.distill.vlm_train import smoke_recipe, train

    ds = tmp_path / "ds"
    ds.mkdir()
    (ds / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in mixture))
    calls: list[int] = []
    real = region_shuffle.RegionShuffler.apply

    def counting(self, batch, rows, step):
        calls.append(sum(1 for r in np.asarray(rows).tolist() if r in self.rows))
        return real(self, batch, rows, step)

    monkeypatch.setattr(region_shuffle.RegionShuffler, "apply", counting)
    res = train(ds, "tiny", tmp_path / "on", smoke_recipe(steps=2, batch=4, max_examples=None), progress=False)
    assert np.isfinite(res.final_loss) and calls == [1, 1]  # 4 rows, batch 4: the LSKD row in every step
    calls.clear()
    train(ds, "tiny", tmp_path / "off", smoke_recipe(steps=1, batch=4, shuffle_regions=False), progress=False)
    assert calls == []
