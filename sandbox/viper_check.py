"""Compatibility check: run every image program of ViperGPT's published prompts in the sandbox.

    python -m vpd.sandbox.viper_check PATH/TO/viper [--tools shapes] [--image IMG] [--json]

``PATH`` is a ViperGPT checkout (a work tree with ``prompts/``, or a bare git directory, read with
``git show HEAD:…``). Programs are taken from ``prompts/*.prompt`` and
``prompts/benchmarks/*.prompt``: the ``>>>`` examples in docstrings and the top-level example
functions. Video programs (``execute_command(video)``, ``VideoSegment``) and the empty
``INSERT_…`` templates are skipped. Each program runs on the ``shapes`` backend; the check fails if
a program is rejected by the policy or fails for a name the API lacks (``NameError`` on an API
name, ``AttributeError`` on ``ImagePatch``). Runtime errors from empty detections, unknown words
or undefined variables in the prompt's own code are reported but allowed.
"""

from __future__ import annotations

import argparse
import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

PROMPT_GLOBS = ("prompts/*.prompt", "prompts/benchmarks/*.prompt")
_DEF = re.compile(r"^def execute_command\((?P<params>[^)]*)\)")


@dataclass(frozen=True, kw_only=True)
class ViperProgram:
    """One extracted program: where it came from (file, 1-based line) and its source."""

    file: str
    line: int
    source: str


def _list_prompt_files(root: Path) -> dict[str, str]:
    if (root / "prompts").is_dir():
        out = {}
        for pattern in PROMPT_GLOBS:
            for p in sorted(root.glob(pattern)):
                out[str(p.relative_to(root))] = p.read_text(encoding="utf-8", errors="replace")
        return out
    names = subprocess.run(["git", "--git-dir", str(root), "ls-tree", "-r", "--name-only", "HEAD", "prompts"],
                           check=True, capture_output=True, text=True).stdout.split()
    out = {}
    for name in names:
        parts = name.split("/")
        if name.endswith(".prompt") and (len(parts) == 2 or (len(parts) == 3 and parts[1] == "benchmarks")):
            out[name] = subprocess.run(["git", "--git-dir", str(root), "show", f"HEAD:{name}"], check=True,
                                       capture_output=True, text=True).stdout
    return out


def _split_programs(lines: list[tuple[int, str]]) -> list[tuple[int, str]]:
    """Cut a run of code lines into programs, each starting at a ``def execute_command`` (with the
    ``# question`` comment lines right above it) and ending before the next one or at dedent."""
    programs: list[tuple[int, list[str]]] = []
    pending_comments: list[str] = []
    current: list[str] | None = None
    for lineno, text in lines:
        if _DEF.match(text):
            current = pending_comments + [text]
            programs.append((lineno, current))
            pending_comments = []
        elif text.startswith("#") and (current is None or not text.strip()):
            pending_comments.append(text)
        elif current is not None and (text.startswith((" ", "\t")) or not text.strip()):
            current.append(text)
        elif text.startswith("#"):
            current = None
            pending_comments = [text]
        else:
            current = None
            pending_comments = []
    return [(ln, "\n".join(src).rstrip() + "\n") for ln, src in programs]


def extract_programs(name: str, text: str) -> list[ViperProgram]:
    """Image programs of one prompt file (doctest-style examples and top-level examples)."""
    raw = text.splitlines()
    doctest = [(i + 1, re.sub(r"^\s*>>> ?", "", l)) for i, l in enumerate(raw) if l.lstrip().startswith(">>>")]
    top = [(i + 1, l) for i, l in enumerate(raw) if not l.lstrip().startswith(">>>")]
    found = []
    for lineno, src in _split_programs(doctest) + _split_programs(top):
        lines = src[src.index("def execute_command"):].splitlines()
        params = _DEF.match(lines[0]).group("params")  # type: ignore[union-attr]
        body = [l for l in lines[1:] if l.strip() and not l.strip().startswith("#")]
        if "video" in params or "VideoSegment" in src or "INSERT_" in params or not body:
            continue
        found.append(ViperProgram(file=name, line=lineno, source=src))
    return found


def api_failure(status: str, error: str | None) -> str | None:
    """Why a result counts as a compatibility failure (policy rejection or a missing API name), else None."""
    from vpd.tools.image_patch import PROGRAM_API, ImagePatch

    if status == "rejected":
        return "rejected"
    err = error or ""
    m = re.match(r"NameError: name '(\w+)' is not defined", err)
    if m and (m.group(1)[0].isupper() or m.group(1) in ("llm_query", "distance", "bool_to_yesno",
                                                        "coerce_to_numeric", "best_image_match",
                                                        "process_guesses", "count", "formatting_answer")):
        if m.group(1) not in PROGRAM_API:
            return f"missing API name {m.group(1)}"
    m = re.match(r"AttributeError: 'ImagePatch' object has no attribute '(\w+)'", err)
    if m and not hasattr(ImagePatch, m.group(1)):
        return f"missing ImagePatch.{m.group(1)}"
    return None


def main(argv: list[str] | None = None) -> int:
    from vpd.sandbox import SandboxPool

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("viper", help="ViperGPT checkout (work tree or bare git dir)")
    ap.add_argument("--tools", default="shapes")
    ap.add_argument("--image", default=None, help="image to run on (default: a generated shapes scene)")
    ap.add_argument("--timeout", type=float, default=5.0)
    ap.add_argument("--json", action="store_true", help="one JSON line per program")
    args = ap.parse_args(argv)
    programs = [p for name, text in _list_prompt_files(Path(args.viper)).items() for p in extract_programs(name, text)]
    if args.image is None:
        from vpd.benchmarks.shapes import generate_scene, render_scene

        image = render_scene(generate_scene(seed=0, index=0))
    else:
        image = args.image
    failures = 0
    statuses: dict[str, int] = {}
    with SandboxPool(workers=2, tools=args.tools, timeout_s=args.timeout) as pool:
        image_id = pool.add_image(image)
        results = pool.map([{"source": p.source, "image": image_id} for p in programs])
    for p, r in zip(programs, results):
        why = api_failure(r.status, r.error)
        failures += why is not None
        statuses[r.status] = statuses.get(r.status, 0) + 1
        if args.json:
            print(json.dumps({"file": p.file, "line": p.line, "status": r.status, "error": r.error,
                              "answer": r.answer, "api_failure": why}))
        else:
            print(f"{'FAIL' if why else 'ok  '} {p.file}:{p.line:<4d} {r.status:8s} {(why or r.error or repr(r.answer))[:90]}")
    print(f"{len(programs)} image programs; statuses {statuses}; {failures} rejected or missing an API name",
          file=sys.stderr if args.json else sys.stdout)
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
