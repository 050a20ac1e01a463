"""The attack corpus format and a runner that reports containment and deadline overshoot.

A corpus is a text file of entries::

    ### <name> :: <allowed statuses, comma separated>
    <program source>

An attack that worked returns or prints ``ESCAPED``. ``python -m vpd.sandbox.attack_corpus
[CORPUS] [--timeout 1.0]`` runs every entry through a :class:`~vpd.sandbox.SandboxPool` and
prints one row per attack (status, seconds, contained) plus the worst overshoot of the deadline.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from PIL import Image

MARKER = "ESCAPED"
DEFAULT_CORPUS = Path(__file__).resolve().parent.parent / "tests" / "attacks" / "corpus.txt"


@dataclass(frozen=True, kw_only=True)
class Attack:
    """One corpus entry: ``name``, the statuses that count as contained, the program."""

    name: str
    allowed: frozenset[str]
    source: str


def parse_corpus(text: str) -> list[Attack]:
    """Parse the corpus format; lines before the first ``###`` header are comments."""
    attacks: list[Attack] = []
    name, allowed, lines = None, frozenset[str](), []  # type: ignore[var-annotated]
    for line in text.splitlines():
        if line.startswith("### "):
            if name is not None:
                attacks.append(Attack(name=name, allowed=allowed, source="\n".join(lines).strip("\n") + "\n"))
            head, _, statuses = line[4:].partition("::")
            name, allowed, lines = head.strip(), frozenset(s.strip() for s in statuses.split(",") if s.strip()), []
        elif name is not None:
            lines.append(line)
    if name is not None:
        attacks.append(Attack(name=name, allowed=allowed, source="\n".join(lines).strip("\n") + "\n"))
    return attacks


def contained(attack: Attack, status: str, answer: object, stdout: str) -> bool:
    """Allowed status and no escape marker in the answer or the prints."""
    return status in attack.allowed and MARKER not in str(answer) and MARKER not in stdout


def attack_image() -> "Image.Image":
    """The image attacks run on: a small grey RGB picture (attacks get a real ImageHandle)."""
    from PIL import Image

    return Image.new("RGB", (64, 48), (128, 128, 128))


def main(argv: list[str] | None = None) -> int:
    from vpd.sandbox import SandboxPool
    from vpd.tools.toolbox import Toolbox

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("corpus", nargs="?", default=str(DEFAULT_CORPUS))
    ap.add_argument("--timeout", type=float, default=1.0)
    ap.add_argument("--memory-mb", type=int, default=256)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args(argv)
    attacks = parse_corpus(Path(args.corpus).read_text(encoding="utf-8"))
    bad, worst = 0, 0.0
    no_tools = Toolbox({})  # every tool call is a clean runtime error
    with SandboxPool(workers=args.workers, timeout_s=args.timeout, memory_mb=args.memory_mb,
                     tools=no_tools) as pool:
        image_id = pool.add_image(attack_image())
        for a in attacks:
            t0 = time.perf_counter()
            r = pool.run(a.source, image=image_id)
            wall = time.perf_counter() - t0
            ok = contained(a, r.status, r.answer, r.stdout)
            bad += not ok
            worst = max(worst, wall - args.timeout)
            print(f"{'ok ' if ok else 'BAD'} {a.name:40s} {r.status:9s} {wall:6.3f}s  {(r.error or '')[:70]}")
    print(f"{len(attacks) - bad}/{len(attacks)} contained; worst wall time over the deadline: {worst:+.3f} s")
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
