"""The run viewer: report generation, paging, and a real headless-browser check (Debian chromium)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from vpd.datasets import read_examples
from vpd.types import Candidate, Verdict
from vpd.view_collect import collect, pass_at_k, summarise
from vpd.view_report import PAGE_SIZE, write_report

ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

COUNT_PROGRAM = '''def execute_command(image):
    image_patch = ImagePatch(image)
    patches = image_patch.find("object")
    return str(len(patches))
'''
WRONG_PROGRAM = '''def execute_command(image):
    return "banana"
'''


def _make_run(shapes_dir: Path, run: Path, n: int | None = None) -> None:
    """A run folder built from real in-process executions on the shapes world."""
    from vpd.tools import load
    from vpd.tools.host import ToolHost
    from vpd.tools.local_client import LocalClient
    from vpd.tools.image_patch import answer_to_plain

    examples, _ = read_examples(shapes_dir)
    examples = examples[:n] if n else examples
    client = LocalClient(ToolHost(load("shapes")))
    run.mkdir(parents=True, exist_ok=True)
    with (run / "candidates-00000.jsonl").open("w") as cf, (run / "verified.jsonl").open("w") as vf:
        for i, ex in enumerate(examples):
            chosen = None
            # a program that happens to return the label for every other example, so verdicts are mixed
            lucky = f"def execute_command(image):\n    return {ex.answer!r}\n"
            programs = [COUNT_PROGRAM, lucky if i % 2 == 0 else WRONG_PROGRAM]
            for idx, prog in enumerate(programs):
                try:
                    answer = answer_to_plain(client.run(prog, ex.image))
                    status, error = "ok", None
                except Exception as exc:  # recorded like the pipeline does
                    answer, status, error = None, "error", str(exc)
                ok = str(answer) == ex.answer
                cand = Candidate(example_id=ex.id, index=idx, program=prog, status=status, answer=answer,
                                 error=error, trace=client.host.trace(answer),
                                 verdict=Verdict(strict=ok, lenient=ok, checker="exact",
                                                 category="none" if ok else ("wrong_answer" if status == "ok" else "runtime_error")))
                cf.write(json.dumps({**cand.to_dict(), "example": ex.to_dict()}) + "\n")
                if ok and chosen is None:
                    chosen = cand
                    vf.write(json.dumps({"example": ex.to_dict(), "candidate": cand.to_dict()}) + "\n")
        cf.write('{"example_id": "partial-line-from-a-kill')  # a torn last line must be skipped


def test_pass_at_k_estimator() -> None:
    assert pass_at_k(4, 0, 1) == 0.0
    assert pass_at_k(4, 4, 1) == 1.0
    assert pass_at_k(4, 1, 1) == pytest.approx(0.25)
    assert pass_at_k(4, 1, 4) == 1.0
    assert pass_at_k(5, 2, 2) == pytest.approx(1 - 3 / 10)


def test_collect_and_summary(shapes_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    _make_run(shapes_dir, run)
    view = collect(run)
    examples, _ = read_examples(shapes_dir)
    assert len(view.examples) == len(examples)
    assert view.bad_lines == 1
    summary = summarise(view)
    assert set(summary["verdicts"]) <= {"verified", "failed"}
    assert summary["failures"].get("wrong_answer", 0) >= len(examples) // 2
    assert summary["tools"]["detect"]["calls"] == len(examples)
    assert all(0.0 <= y <= 1.0 for ys in summary["pass_at_k"].values() for y in ys)
    verified = [e for e in view.examples if e.verdict == "verified"]
    assert verified and all(e.chosen in (0, 1) for e in verified)


def test_report_pages_and_thumbs_cached(shapes_dir: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    _make_run(shapes_dir, run)
    html = write_report(run)
    files = html.parent / f"{html.stem}_files"
    n = len(collect(run).examples)
    assert len(list((files / "pages").glob("page-*.js"))) == -(-n // PAGE_SIZE)
    thumbs = sorted((files / "thumbs").glob("*.jpg"))
    assert thumbs
    mtimes = [t.stat().st_mtime_ns for t in thumbs]
    write_report(run)  # second time: thumbnails reused, not rewritten
    assert [t.stat().st_mtime_ns for t in thumbs] == mtimes
    assert (files / "pass_at_k.png").stat().st_size > 1000
    text = html.read_text()
    assert "http://" not in text and "https://" not in text  # nothing fetched from the network


@pytest.mark.browser
def test_report_in_headless_chromium(shapes_dir: Path, tmp_path: Path) -> None:
    """Loads with no console errors; a filter click changes the list; an example expands to boxes + trace."""
    chromium = shutil.which("chromium") or "/usr/bin/chromium"
    assert Path(chromium).exists(), "Debian chromium is missing: `make test` installs it (make browser)"
    from playwright.sync_api import sync_playwright

    run = tmp_path / "run"
    _make_run(shapes_dir, run)
    html = write_report(run)
    ARTIFACTS.mkdir(exist_ok=True)
    errors: list[str] = []
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=chromium, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
            "--disable-background-networking", "--disable-component-update", "--disable-sync"])
        page = browser.new_page(viewport={"width": 1280, "height": 1000})
        page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(html.as_uri())
        page.wait_for_selector(".ex")
        total = page.locator(".ex").count()
        assert total > 0
        page.screenshot(path=str(ARTIFACTS / "viewer_summary.png"), full_page=True)
        before = page.locator("#count").inner_text()
        page.click("button[data-verdict=failed]")
        after = page.locator("#count").inner_text()
        assert before != after
        badges = page.locator(".ex .badge").all_inner_texts()
        assert badges and all(b == "failed" for b in badges)
        page.click("button[data-verdict=verified]")
        badges = page.locator(".ex .badge").all_inner_texts()
        assert badges and all(b == "verified" for b in badges)
        page.locator(".ex .exhead").first.click()
        page.wait_for_selector(".detail .cand")
        assert page.locator(".detail svg rect.box").count() > 0
        page.locator(".detail details.trace summary").first.click()
        assert "Calling find function" in page.locator(".detail details.trace pre").first.inner_text()
        page.screenshot(path=str(ARTIFACTS / "viewer_expanded.png"), full_page=True)
        browser.close()
    assert errors == []
