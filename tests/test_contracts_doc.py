"""docs/contracts.md's *Benchmarks and importers* table names every registered benchmark and
importer, with the splits (unlabelled ones starred) and a headline metric the scorer reports, so
the doc cannot drift from `vpd.benchmarks.registry` and `vpd.benchmarks.importers`."""

from __future__ import annotations

import re
from pathlib import Path

from vpd.benchmarks.importers import IMPORTERS, importer_names
from vpd.benchmarks.registry import benchmark_names, get_benchmark

DOC = Path(__file__).resolve().parents[1] / "docs" / "contracts.md"


def _rows() -> dict[str, list[str]]:
    """name -> the cells of its row in the table of the *Benchmarks and importers* section."""
    text = DOC.read_text(encoding="utf-8")
    section = text.split("## Benchmarks and importers", 1)[1].split("\n## ", 1)[0]
    rows: dict[str, list[str]] = {}
    for line in section.splitlines():
        m = re.match(r"\|\s*`([a-z0-9_]+)`\s*\|(.*)\|\s*$", line)
        if m:
            assert m.group(1) not in rows, f"{m.group(1)} listed twice"
            rows[m.group(1)] = [c.strip() for c in m.group(2).split("|")]
    return rows


def test_doc_lists_exactly_the_registered_names() -> None:
    assert sorted(_rows()) == sorted(set(benchmark_names()) | set(importer_names()))


def test_doc_splits_match_the_importers() -> None:
    rows = _rows()
    for name in importer_names():
        imp = IMPORTERS.get(name)
        cells = [c.strip() for c in rows[name][0].split(",")]
        assert [c.replace("\\*", "").replace("*", "") for c in cells] == list(imp.splits), name
        assert {c.replace("\\*", "*")[:-1] for c in cells if c.endswith("*")} == set(imp.unlabelled), name
    for name in set(rows) - set(importer_names()):
        assert rows[name][0] == "—", f"{name} has no importer"


def test_doc_headline_metric_is_reported_by_the_scorer() -> None:
    rows = _rows()
    for name in benchmark_names():
        metric = re.match(r"`([a-z_0-9]+)`", rows[name][1])
        assert metric, f"{name}: headline metric cell must start with the metric key in backticks"
        assert metric.group(1) in get_benchmark(name).score([], {}).metrics, name
        assert rows[name][2] not in ("", "—"), f"{name}: say which official scorer it matches"
    for name in set(rows) - set(benchmark_names()):
        assert rows[name][1].startswith("—"), f"{name} has no scorer"
