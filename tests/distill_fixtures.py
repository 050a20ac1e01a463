"""Real synth runs for the distillation tests: ViperGPT-style programs executed on the shapes world.

The programs are real ``ImagePatch`` programs (written here per question template, as the few-shot
library would), executed in-process with :class:`vpd.tools.local_client.LocalClient` on the real
``shapes`` backend; the trace is the host's; verdicts come from ``vpd.checkers``. Records are written
in the run format of docs/contracts.md ("Runs").
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from vpd.types import Candidate, Example, Trace


def _sing(noun: str) -> str:
    words = noun.split()
    if words and words[-1].endswith("s"):
        words[-1] = words[-1][:-1]
    return " ".join(words)


_REL = {"left of": "a.horizontal_center < b.horizontal_center", "right of": "a.horizontal_center > b.horizontal_center",
        "above": "a.vertical_center > b.vertical_center", "below": "a.vertical_center < b.vertical_center"}


def program_for(ex: Example) -> str | None:
    """A ViperGPT-style program for a shapes question (None for a form not covered)."""
    q = ex.question
    head = "def execute_command(image):\n    image_patch = ImagePatch(image)\n"
    if m := re.match(r"How many (.+?) are there\?", q):
        return head + f"    patches = image_patch.find({_sing(m.group(1))!r})\n    return len(patches)\n"
    if m := re.match(r"How many (.+?) are (left of|right of|above|below) the (.+?)\?", q):
        return head + (f"    bs = image_patch.find({m.group(3)!r})\n    if len(bs) == 0:\n        return 0\n"
                       f"    b = bs[0]\n    n = 0\n    for a in image_patch.find({_sing(m.group(1))!r}):\n"
                       f"        if {_REL[m.group(2)]}:\n            n += 1\n    return n\n")
    if m := re.match(r"(?:Are there any|Is there an?) (.+?)\?", q):
        return head + f"    return bool_to_yesno(image_patch.exists({_sing(m.group(1))!r}))\n"
    if m := re.match(r"What (color|shape|size) is the (.+?)\?", q):
        return head + (f"    patch = image_patch.find({m.group(2)!r})[0]\n"
                       f"    return patch.simple_query('What {m.group(1)} is the object?')\n")
    if m := re.match(r"Is the (.+?) (left of|right of|above|below) the (.+?)\?", q):
        return head + (f"    a = image_patch.find({m.group(1)!r})[0]\n    b = image_patch.find({m.group(3)!r})[0]\n"
                       f"    return bool_to_yesno({_REL[m.group(2)]})\n")
    if m := re.match(r"Are there more (.+?) than (.+?)\?", q):
        return head + (f"    a = image_patch.find({_sing(m.group(1))!r})\n    b = image_patch.find({_sing(m.group(2))!r})\n"
                       f"    return bool_to_yesno(len(a) > len(b))\n")
    if m := re.match(r"Is the (.+?) larger than the (.+?)\?", q):
        return head + (f"    a = image_patch.find({m.group(1)!r})[0]\n    b = image_patch.find({m.group(2)!r})[0]\n"
                       f"    return bool_to_yesno(a.width * a.height > b.width * b.height)\n")
    if ex.choices and (m := re.match(r"How many (.+?) are in the image\?", q)):
        opts = " ".join(f"{'ABCD'[i]}) {c}" for i, c in enumerate(ex.choices))
        return head + (f"    n = str(len(image_patch.find({_sing(m.group(1))!r})))\n    options = {opts!r}.split()\n"
                       f"    for i in range(0, len(options), 2):\n        if options[i + 1] == n:\n"
                       f"            return options[i][0]\n    return 'A'\n")
    if ex.choices and (m := re.match(r"(?:What|Which) (color|shape) is the (.+?)\?", q)):
        opts = " ".join(f"{'ABCD'[i]}) {c}" for i, c in enumerate(ex.choices))
        return head + (f"    patch = image_patch.find({m.group(2)!r})[0]\n"
                       f"    ans = patch.simple_query('What {m.group(1)} is the object?')\n    options = {opts!r}.split()\n"
                       f"    for i in range(0, len(options), 2):\n        if options[i + 1] == ans:\n"
                       f"            return options[i][0]\n    return 'A'\n")
    return None


def make_shapes_run(root: Path, *, n: int = 16, seed: int = 11) -> tuple[Path, Path, dict]:
    """Generate a shapes dataset and a run folder from executing programs on it.

    Returns ``(data_dir, run_dir, counts)``.
    """
    from vpd.benchmarks.shapes import make_dataset
    from vpd.checkers import checker_for
    from vpd.datasets import read_examples
    from vpd.tools import load
    from vpd.tools.host import ToolHost
    from vpd.tools.local_client import LocalClient

    data = root / "data"
    make_dataset(data, n=n, seed=seed)
    examples, _ = read_examples(data)
    client = LocalClient(ToolHost(load("shapes")))
    run = root / "run"
    run.mkdir(parents=True, exist_ok=True)
    (run / "config.json").write_text(json.dumps({"data": str(data)}))
    counts = {"examples": len(examples), "programs": 0, "passed": 0, "errors": 0}
    with (run / "candidates-00000.jsonl").open("w") as cand_fh, (run / "verified.jsonl").open("w") as ver_fh:
        for ex in examples:
            src = program_for(ex)
            status, answer, error, trace = "error", None, "no program", Trace()
            if src is not None:
                counts["programs"] += 1
                try:
                    value = client.run(src, ex.image)
                    answer = value if isinstance(value, (str, int, float, bool)) else str(value)
                    status, error = "ok", None
                except Exception as exc:
                    status, error = "error", f"{type(exc).__name__}: {exc}"
                    counts["errors"] += 1
                trace = client.host.trace(answer)
            verdict = checker_for(ex).check(answer, ex) if status == "ok" else None
            cand = Candidate(example_id=ex.id, index=0, program=src, status=status, answer=answer, error=error,
                             trace=trace, verdict=verdict)
            rec = {**cand.to_dict(), "example": ex.to_dict()}
            cand_fh.write(json.dumps(rec) + "\n")
            if verdict is not None and verdict.passed:
                counts["passed"] += 1
                ver_fh.write(json.dumps({"example": ex.to_dict(), "candidate": cand.to_dict()}) + "\n")
    return data, run, counts
