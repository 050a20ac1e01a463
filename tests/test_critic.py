"""The LSKD critic: trained on scene labels (shapes) or human labels, P/R/F1 printed and saved."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from vpd.cli import app
from vpd.distill.critic import Critic, evaluate_scores
from vpd.distill.lskd_run import read_lskd, read_verbalisations

runner = CliRunner()


@pytest.fixture(scope="module")
def lskd_run(tmp_path_factory):
    from vpd.benchmarks.shapes import make_dataset

    root = tmp_path_factory.mktemp("critic")
    make_dataset(root / "data", n=8, seed=31)
    out = root / "run"
    res = runner.invoke(app, ["lskd", "--data", str(root / "data"), "--out", str(out), "--llm", "none",
                              "--per-image", "5", "--critic-kind", "text"])  # this file tests the text critic
    assert res.exit_code == 0, res.output
    return root, out, res.output


def test_lskd_prints_and_saves_critic_metrics(lskd_run):
    root, out, output = lskd_run
    assert "critic on held-out labelled triples" in output and "precision" in output
    rep = json.loads((out / "report.json").read_text())["lskd"]
    held = rep["critic"]["heldout"]
    for key in ("precision", "recall", "f1", "kept_accuracy", "all_accuracy", "n"):
        assert key in held
    assert held["n"] > 0 and held["positives"] > 0
    # the critic is worth having: what it keeps is more accurate than everything
    assert held["kept_accuracy"] > held["all_accuracy"]
    assert held["f1"] > 0.5
    kept = [json.loads(l) for l in (out / "lskd.jsonl").read_text().splitlines()]
    assert kept and all(r["prediction"] >= 0.8 for r in kept)
    assert all(r["source"] in ("llm", "verbaliser") for r in kept)
    assert (out / "critic" / "critic.npz").is_file()


def test_critic_save_load_round_trip_scores_identically(lskd_run):
    root, out, _ = lskd_run
    critic = Critic.load(out / "critic")
    verbs = read_verbalisations(out / "verbalisations.jsonl")
    triples = read_lskd(out / "lskd_all.jsonl")[:20]
    s1 = critic.score(triples, verbs)
    s2 = Critic.load(out / "critic", embedder=critic.embedder).score(triples, verbs, batch_size=1)
    assert s1.shape == (20,) and np.all((s1 >= 0) & (s1 <= 1))
    assert np.allclose(s1, s2, atol=1e-4)
    stored = [r["prediction"] for r in map(json.loads, (out / "lskd_all.jsonl").read_text().splitlines()[:20])]
    assert np.allclose(s1, stored, atol=1e-4)


def test_train_critic_from_human_labels_file(lskd_run, tmp_path):
    root, out, _ = lskd_run
    recs = [json.loads(l) for l in (out / "lskd_all.jsonl").read_text().splitlines()]
    human = tmp_path / "human.jsonl"
    with human.open("w") as fh:
        for r in recs:
            label = r.get("label")
            if label is None:
                continue
            fh.write(json.dumps({**r, "label": "accept" if label else "reject"}) + "\n")
        fh.write("{not json\n")
    res = runner.invoke(app, ["lskd", "train-critic", str(out), "--labels", str(human), "--out", str(tmp_path / "c"),
                              "--kind", "text"])
    assert res.exit_code == 0, res.output
    assert "P " in res.output and "F1" in res.output
    section = json.loads((out / "report.json").read_text())["critic"]
    assert section["labels"] == str(human) and section["bad_lines"] == 1
    assert 0.0 <= section["heldout"]["precision"] <= 1.0
    assert (tmp_path / "c" / "critic.json").is_file()


def test_lskd_run_form_with_a_given_critic(lskd_run, tmp_path):
    root, out, _ = lskd_run
    res = runner.invoke(app, ["lskd", "run", "--data", str(root / "data"), "--out", str(tmp_path / "r2"),
                              "--llm", "none", "--critic", str(out / "critic"), "--critic-kind", "text",
                              "--max-images", "4"])
    assert res.exit_code == 0, res.output
    rep = json.loads((tmp_path / "r2" / "report.json").read_text())["lskd"]
    assert rep["critic"]["trained_here"] is False and rep["images"] == 4
    assert not (tmp_path / "r2" / "critic").exists()


def test_missing_critic_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="train one with"):
        Critic.load(tmp_path)


def test_evaluate_scores_by_hand():
    m = evaluate_scores(np.array([0.9, 0.85, 0.3, 0.95, 0.1]), [True, False, True, True, False], 0.8)
    assert (m.kept, m.precision, m.recall) == (3, 2 / 3, 2 / 3)
    assert m.kept_accuracy == pytest.approx(2 / 3) and m.all_accuracy == pytest.approx(3 / 5)


def test_split_by_image_keeps_images_together_and_ignores_the_folder():
    from vpd.distill.critic import split_by_image
    from vpd.distill.lskd import Triple

    def triples(folder):
        return [Triple(image=f"{folder}/images/s{i % 12:02d}.png", question="q", answer="a", rationale="r",
                       source="llm") for i in range(60)]

    a, b = split_by_image(triples("/tmp/pytest-1/critic0/data"), 0.3), split_by_image(triples("/other/place"), 0.3)
    assert a == b  # where the dataset lives never moves an image across the split
    train, test = a
    assert train and test and sorted(train + test) == list(range(60))
    assert not {i % 12 for i in train} & {i % 12 for i in test}  # every image on one side only
