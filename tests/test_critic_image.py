"""The image-aware critic sees the cited regions' pixels: it rejects triples that say "red" about a
blue region even when the tools' verbalisation says red too, which the text-only critic cannot tell."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vpd.distill.critic_compare import compare_critics, format_table, tool_error_triples
from vpd.distill.critic_image import ImageCritic, crop_descriptor


def test_crop_descriptor_sees_the_colour_inside_the_box():
    img = np.full((60, 60, 3), 200, np.uint8)
    img[10:30, 10:30] = (220, 30, 30)  # a red square
    img[35:55, 35:55] = (30, 30, 220)  # a blue square
    red, blue = crop_descriptor(img, (5, 5, 35, 35)), crop_descriptor(img, (30, 30, 60, 60))
    assert red[0] > 0.9 and blue[8] > 0.9  # hue bins: red 0, blue 240/360*12 = 8
    assert not np.allclose(red, blue)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    from vpd.benchmarks.shapes import make_dataset
    from vpd.distill.lskd_run import LskdConfig, run_lskd

    root = tmp_path_factory.mktemp("critic_image")
    make_dataset(root / "data", n=20, seed=7)
    run_lskd(LskdConfig(data=str(root / "data"), out=str(root / "run"), llm=None, per_image=6), show_progress=False)
    return root / "run"


def test_image_critic_rejects_region_contradictions_the_text_critic_accepts(run):
    from vpd.distill.lskd_run import read_lskd, read_verbalisations

    verbs = read_verbalisations(run / "verbalisations.jsonl")
    pairs = tool_error_triples([t for t in read_lskd(run / "lskd_all.jsonl") if t.label], verbs)
    assert pairs
    for t, v in pairs:  # the text agrees with its (corrupted) verbalisation, not with the pixels
        region = v.region(t.refs[0])
        assert t.answer in region.description and t.answer not in verbs[t.image].region(t.refs[0]).description
    section = compare_critics(run, threshold=0.8)
    print(format_table(section))
    rows = {(r["set"], r["critic"]): r for r in section["rows"]}
    errs_text, errs_image = rows["simulated tool errors only", "text-only"], rows["simulated tool errors only", "image-aware"]
    assert errs_text["n"] == errs_image["n"] >= 4
    assert errs_image["kept"] <= 0.2 * errs_image["n"]  # the image-aware critic rejects them
    assert errs_text["kept"] >= 0.4 * errs_text["n"]  # the text-only one keeps many: it cannot tell
    both = rows["held-out + simulated tool errors", "image-aware"], rows["held-out + simulated tool errors", "text-only"]
    assert both[0]["f1"] > both[1]["f1"]
    # saved as plain arrays and reloads to the same scores
    critic = ImageCritic.load(section["image_critic"])
    t, v = pairs[0]
    assert critic.score([t], [v])[0] < 0.8
    assert json.loads((run / "report.json").read_text())["critic_compare"]["rows"] == section["rows"]
