"""Write a run's static, self-contained HTML report (opens from disk, works offline).

Layout of the output (``report.html`` next to a ``<stem>_files/`` folder):

* ``report.html`` — the page, CSS and JS inline;
* ``<stem>_files/summary.js`` and ``index.js`` — summary numbers and a light per-example index
  (what filtering needs) loaded by ``<script>`` tags (no fetch, so ``file://`` works);
* ``<stem>_files/pages/page-NNNNN.js`` — full details (candidates, code, traces, rationales) in pages
  of :data:`PAGE_SIZE` examples, loaded only when an example is expanded;
* ``<stem>_files/thumbs/*.jpg`` — thumbnails, generated once and reused (keyed by source path,
  size and mtime);
* ``<stem>_files/*.png`` — pass@k curve and training loss curves (matplotlib).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from vpd.types import Trace
from vpd.view_collect import RunView, collect, summarise
from vpd.view_template import render_page

PAGE_SIZE = 50
THUMB_MAX_PX = 384


def _thumb(src: str, out_dir: Path) -> tuple[str | None, int, int]:
    """Make (or reuse) a JPEG thumbnail; returns (relative name, original width, original height)."""
    path = Path(src)
    try:
        st = path.stat()
    except OSError:
        return None, 0, 0
    key = hashlib.sha1(f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()[:16]
    name = f"{key}.jpg"
    meta_file = out_dir / f"{key}.json"
    if (out_dir / name).exists() and meta_file.exists():
        w, h = json.loads(meta_file.read_text())
        return name, w, h
    from PIL import Image

    try:
        with Image.open(path) as img:
            img.load()
            w, h = img.size
            im = img.convert("RGB")
            im.thumbnail((THUMB_MAX_PX, THUMB_MAX_PX))
            im.save(out_dir / name, "JPEG", quality=85)
    except Exception:
        return None, 0, 0
    meta_file.write_text(json.dumps([w, h]))
    return name, w, h


def _trace_text(cand: dict[str, Any]) -> str:
    trace = cand.get("trace")
    if not isinstance(trace, dict):
        return ""
    try:
        return Trace.from_dict(trace).text()
    except Exception as exc:  # a malformed trace must not stop the report
        return f"(unreadable trace: {exc})"


def _calls_boxes(cand: dict[str, Any]) -> list[dict[str, Any]]:
    out = []
    for i, call in enumerate((cand.get("trace") or {}).get("calls") or []):
        if not isinstance(call, dict):
            continue
        boxes = [[b.get("x0"), b.get("y0"), b.get("x1"), b.get("y1"), b.get("label", "")]
                 for b in call.get("boxes") or [] if isinstance(b, dict)]
        if boxes:
            query = (call.get("args") or {}).get("query", call.get("tool", ""))
            out.append({"call": i, "tool": call.get("tool"), "query": str(query), "boxes": boxes})
    return out


def _plots(view: RunView, summary: dict[str, Any], files: Path) -> list[str]:
    """Draw the pass@k-vs-k curve and loss curves as PNGs; returns their relative names."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names: list[str] = []
    if summary["pass_at_k"]:
        fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
        for qtype, ys in summary["pass_at_k"].items():
            ax.plot(summary["ks"], ys, marker="o", lw=2.5 if qtype == "all" else 1.2, label=qtype)
        ax.set_xticks(summary["ks"])
        ax.set_xlabel("k (candidates)")
        ax.set_ylabel("pass@k")
        ax.set_ylim(0, 1.02)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=7, ncol=2)
        fig.tight_layout()
        fig.savefig(files / "pass_at_k.png")
        plt.close(fig)
        names.append("pass_at_k.png")
    for i, (where, rows) in enumerate(sorted(view.metrics.items())):
        pts = [(r.get("step"), r.get("loss")) for r in rows if r.get("loss") is not None and r.get("step") is not None]
        if not pts:
            continue
        fig, ax = plt.subplots(figsize=(5, 3.2), dpi=100)
        ax.plot([p[0] for p in pts], [p[1] for p in pts])
        ax.set_xlabel("step")
        ax.set_ylabel("loss")
        ax.set_title(where, fontsize=9)
        ax.grid(alpha=0.3)
        fig.tight_layout()
        name = f"loss_{i}.png"
        fig.savefig(files / name)
        plt.close(fig)
        names.append(name)
    return names


def write_report(run_dir: str | Path, out: str | Path | None = None, *, progress: bool = True,
                 also: list[str | Path] | tuple = ()) -> Path:
    """Write the report for ``run_dir``; returns the path of ``report.html``.

    ``also``: extra folders (student checkpoint, LSKD run, evals) shown in the same report.
    """
    view = collect(run_dir, also)
    out_html = Path(out) if out else view.root / "report.html"
    out_html.parent.mkdir(parents=True, exist_ok=True)
    files = out_html.parent / f"{out_html.stem}_files"
    (files / "pages").mkdir(parents=True, exist_ok=True)
    (files / "thumbs").mkdir(parents=True, exist_ok=True)
    summary = summarise(view)
    plots = _plots(view, summary, files)

    index: list[dict[str, Any]] = []
    pages: list[list[dict[str, Any]]] = []
    iterator: Any = enumerate(view.examples)
    if progress and len(view.examples) > 200:
        from rich.progress import track

        iterator = track(iterator, total=len(view.examples), description="report")
    for pos, ex in iterator:
        thumb, w, h = _thumb(ex.image, files / "thumbs")
        index.append({
            "i": pos, "id": ex.id, "q": ex.question, "a": ex.answer, "t": ex.qtype, "v": ex.verdict,
            "c": ex.category, "tools": ex.tools, "th": thumb, "w": w, "h": h, "n": len(ex.candidates),
        })
        if pos % PAGE_SIZE == 0:
            pages.append([])
        pages[-1].append({
            "id": ex.id, "choices": ex.choices, "rationale": ex.rationale, "chosen": ex.chosen,
            "candidates": [{
                "index": c.get("index"), "status": c.get("status"), "answer": c.get("answer"),
                "error": c.get("error"), "program": c.get("program"),
                "verdict": (c.get("verdict") or {}).get("lenient") if isinstance(c.get("verdict"), dict) else None,
                "category": (c.get("verdict") or {}).get("category") if isinstance(c.get("verdict"), dict) else None,
                "trace": _trace_text(c), "boxes": _calls_boxes(c),
            } for c in ex.candidates],
        })
    for i, page in enumerate(pages):
        (files / "pages" / f"page-{i:05d}.js").write_text(
            f"VPD_PAGE({i}, {json.dumps(page, ensure_ascii=False, default=str)});\n", encoding="utf-8")

    lskd = []
    for rec in view.lskd[:2000]:
        thumb, w, h = _thumb(str(rec.get("image", "")), files / "thumbs")
        lskd.append({"q": rec.get("question"), "a": rec.get("answer"), "r": rec.get("rationale"),
                     "score": rec.get("critic_score", rec.get("score")), "th": thumb, "w": w, "h": h,
                     "regions": rec.get("region_all") or rec.get("region") or [],
                     "refs": rec.get("references") or []})
    summary_doc = {
        "run": str(view.root), "summary": summary, "report": view.report, "manifest": view.manifest,
        "plots": plots, "evals": view.evals, "lskd": lskd, "bad_lines": view.bad_lines,
        "page_size": PAGE_SIZE,
    }
    (files / "summary.js").write_text(
        "window.VPD_SUMMARY = " + json.dumps(summary_doc, ensure_ascii=False, default=str) + ";\n", encoding="utf-8")
    (files / "index.js").write_text(
        "window.VPD_INDEX = " + json.dumps(index, ensure_ascii=False, default=str) + ";\n", encoding="utf-8")
    out_html.write_text(render_page(files.name, title=f"vpd run · {view.root.name}"), encoding="utf-8")
    return out_html


def serve(report: Path, port: int = 8765) -> None:
    """Serve the report's folder on loopback (for big runs); blocks until interrupted."""
    import functools
    import http.server

    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(report.parent))
    with http.server.ThreadingHTTPServer(("127.0.0.1", port), handler) as httpd:
        print(f"serving http://127.0.0.1:{port}/{report.name}  (Ctrl-C to stop)")
        try:
            httpd.serve_forever()
        except KeyboardInterrupt:
            pass


__all__ = ["write_report", "serve", "PAGE_SIZE"]
