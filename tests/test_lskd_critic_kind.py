"""`vpd lskd --critic-kind image|text`: the chosen critic scores and filters the triples, the kind is
recorded in the report and in every scored record, and a saved critic of the other kind is refused."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from vpd.cli import app

runner = CliRunner()
THRESHOLD = 0.8
MARKERS = {"image": "image_critic.npz", "text": "critic.npz"}


def _flat(text: str) -> str:
    return " ".join(text.split())


class Runs:
    """A 12-scene shapes dataset (``vpd data shapes``) and, made on first use, one ``vpd lskd --llm none``
    run per critic kind (so each test pays only for the runs it reads)."""

    def __init__(self, root: Path) -> None:
        self.root, self._made = root, {}
        res = runner.invoke(app, ["data", "shapes", "--n", "12", "--seed", "3", "--out", str(root / "data")])
        assert res.exit_code == 0, res.output
        self.data = root / "data"

    def __getitem__(self, kind: str) -> Path:
        if kind not in self._made:
            out = self.root / f"lskd-{kind}"
            res = runner.invoke(app, ["lskd", "--data", str(self.data), "--out", str(out), "--llm", "none",
                                      "--critic-kind", kind, "--threshold", str(THRESHOLD)])
            assert res.exit_code == 0, res.output
            assert f"by the {kind} critic" in _flat(res.output)
            self._made[kind] = out
        return self._made[kind]


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Runs:
    return Runs(tmp_path_factory.mktemp("critic_kind"))


@pytest.mark.parametrize("kind", ["image", "text"])
def test_the_chosen_critic_filters_and_is_named_in_report_and_records(runs, kind):
    from vpd.distill.critic_kinds import load_critic
    from vpd.distill.lskd import from_record
    from vpd.distill.lskd_run import read_verbalisations

    run = runs[kind]
    section = json.loads((run / "report.json").read_text())["lskd"]
    assert section["critic_kind"] == kind and section["critic"]["kind"] == kind
    assert section["critic"]["trained_here"] is True and section["unfiltered"] is False
    assert sorted(p.name for p in (run / "critic").glob("*.npz")) == [MARKERS[kind]]
    everything = [json.loads(line) for line in (run / "lskd_all.jsonl").read_text().splitlines()]
    kept = [json.loads(line) for line in (run / "lskd.jsonl").read_text().splitlines()]
    assert {r["critic_kind"] for r in everything} == {kind}
    assert kept and len(kept) == section["kept"]
    assert all(r["prediction"] >= THRESHOLD and r["kept"] for r in kept)
    for r in everything:  # kept exactly when an output-source triple scores >= threshold
        assert r["kept"] == (r["source"] in ("llm", "verbaliser") and r["prediction"] >= THRESHOLD)
    assert any(r["prediction"] < THRESHOLD for r in everything)  # the filter dropped something
    # the predictions are the saved critic's scores (so the named kind really scored them)
    critic = load_critic(run / "critic", kind)
    verbs = read_verbalisations(run / "verbalisations.jsonl")
    some = everything[:: max(1, len(everything) // 12)]
    again = critic.score([from_record(r) for r in some], verbs)
    np.testing.assert_allclose(again, [r["prediction"] for r in some], atol=1e-5)


def test_a_saved_critic_of_the_other_kind_is_refused(runs, tmp_path):
    from vpd.distill.critic_kinds import load_critic

    for saved, asked in (("text", "image"), ("image", "text")):
        out = tmp_path / f"{saved}-as-{asked}"
        res = runner.invoke(app, ["lskd", "--data", str(runs.data), "--out", str(out), "--llm", "none",
                                  "--critic", str(runs[saved] / "critic"), "--critic-kind", asked])
        assert res.exit_code == 2, res.output
        flat = _flat(res.output)
        assert f"holds a {saved} critic" in flat and f"--critic-kind {saved}" in flat
        assert not out.exists()  # refused before any work
        with pytest.raises(ValueError, match=f"holds a {saved} critic"):
            load_critic(runs[saved] / "critic", asked)
    with pytest.raises(FileNotFoundError, match="no critic"):
        load_critic(tmp_path, "image")
    # the matching kind loads and filters; the report says it was not trained here
    out = tmp_path / "text-as-text"
    res = runner.invoke(app, ["lskd", "--data", str(runs.data), "--out", str(out), "--llm", "none",
                              "--critic", str(runs["text"] / "critic"), "--critic-kind", "text", "--max-images", "3"])
    assert res.exit_code == 0, res.output
    section = json.loads((out / "report.json").read_text())["lskd"]
    assert section["critic_kind"] == "text" and section["critic"]["trained_here"] is False
    assert not (out / "critic").exists()


def test_train_critic_kind_and_compare_critics_cli(runs, tmp_path):
    from vpd.distill.critic_compare import format_table

    run = runs["image"]
    res = runner.invoke(app, ["lskd", "train-critic", str(run), "--kind", "text", "--out", str(tmp_path / "tc")])
    assert res.exit_code == 0, res.output
    section = json.loads((run / "report.json").read_text())["critic"]
    assert section["kind"] == "text" and sorted(p.name for p in (tmp_path / "tc").glob("*.npz")) == ["critic.npz"]
    res = runner.invoke(app, ["lskd", "compare-critics", str(run), "--out", str(tmp_path / "ic")])
    assert res.exit_code == 0, res.output
    compare = json.loads((run / "report.json").read_text())["critic_compare"]
    assert {r["critic"] for r in compare["rows"]} == {"text-only", "image-aware"}
    assert format_table(compare) in res.output  # the same table as `python -m vpd.distill.critic_compare`
    assert (tmp_path / "ic" / "image_critic.npz").is_file()
