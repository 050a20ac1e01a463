"""Measure few-shot program writing on a labelled dataset (the shapes world by default).

Two measurements:

* :func:`library_oracle` — the ideal copy: for each question, take the library example of the
  same template, swap in the question's filler words and options, and run it. This checks the
  library programs themselves (and the backend) and bounds what retrieval can reach.
* :func:`compare_modes` — sample ``k`` programs per question with a real sampler (greedy first,
  then ``k - 1`` at ``temperature``) for each prompt mode (``nearest``, ``fixed``) and report the
  share of valid programs, greedy-correct and correct-within-``k``. With
  ``exclude_same_template`` (``--exclude-same-template``, leave-template-out) no example written
  for the question's own template is offered, so the share measures composing a program, not
  adapting a near-copy; ``--library DIR`` measures another library folder.

Programs run in the sandbox (:func:`vpd.sandbox.run_program`); answers are checked with the
``shapes`` checker (:mod:`vpd.checkers`).

    python -m vpd.programs.fewshot_eval --questions 40 --k 4 --sampler gemma
    python -m vpd.programs.fewshot_eval --questions 40 --k 4 --modes nearest --exclude-same-template
"""

from __future__ import annotations

import argparse
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from vpd.programs.library import Library, LibraryProgram, format_choices, load_library
from vpd.programs.prompt import PromptBuilder
from vpd.programs.sampler_base import Sampler
from vpd.programs.sampling import sample_programs
from vpd.types import Example


@dataclass(frozen=True, kw_only=True)
class ModeResult:
    """Shares are fractions of questions (``valid``: of all candidates)."""

    mode: str
    questions: int
    candidates: int
    valid: float
    greedy_correct: float
    correct_within_k: float
    same_template_last: float
    per_qtype: dict[str, dict[str, float]] = field(default_factory=dict)
    seconds: float = 0.0
    completion_tokens: int = 0
    exclude_same_template: bool = False


def template_fillers(template: str, question: str) -> dict[str, str] | None:
    """``{color}``-style fillers of ``question`` under ``template`` (None if it does not match)."""
    pattern = re.escape(template)
    for key in re.findall(r"\{(\w+)\}", template):
        pattern = pattern.replace(re.escape("{" + key + "}"), f"(?P<{key}>[a-z]+)", 1)
    m = re.fullmatch(pattern, question)
    return m.groupdict() if m else None


def copy_program(example: LibraryProgram, question: str, choices: Sequence[str] | None) -> str | None:
    """The library program rewritten for ``question`` of the same template (None if not possible)."""
    old = template_fillers(example.template, example.question) if example.template else None
    new = template_fillers(example.template, question) if example.template else None
    if old is None or new is None:
        return None
    program = example.program
    if example.choices and choices:
        program = program.replace(format_choices(example.choices), format_choices(tuple(choices)))
    marks = {k: f"\0{i}\0" for i, k in enumerate(old)}
    for k, v in old.items():  # two phases, so that red->blue, blue->green does not chain
        program = re.sub(rf"(?<![\w]){re.escape(v)}(?![\w])", marks[k], program)
    for k, v in new.items():
        program = program.replace(marks[k], v)
    return program


def _check(example: Example, answer: Any) -> bool:
    from vpd.checkers import checker_for

    return checker_for(example, "shapes").check(answer, example).passed


def _run(source: str, example: Example, tools: Any) -> tuple[str, Any]:
    from vpd.sandbox import run_program

    r = run_program(source, image=example.image, timeout_s=5.0, tools=tools)
    return r.status, r.answer


def library_oracle(examples: Sequence[Example], library: Library | None = None, tools: Any = "shapes") -> dict[str, Any]:
    """Accuracy of the ideal copy of the same-template library examples, per template."""
    library = library or load_library()
    by_template: dict[str, list[LibraryProgram]] = {}
    for p in library:
        if p.template:
            by_template.setdefault(p.template, []).append(p)
    per: dict[str, list[int]] = {}
    for ex in examples:
        t = str(ex.metadata.get("template", ""))
        for p in by_template.get(t, []):
            src = copy_program(p, ex.question, ex.choices)
            ok = src is not None and _check(ex, _run(src, ex, tools)[1])
            per.setdefault(p.id, []).append(int(ok))
    missing = sorted({str(ex.metadata.get("template")) for ex in examples} - set(by_template))
    return {"per_program": {k: sum(v) / len(v) for k, v in sorted(per.items())},
            "overall": sum(sum(v) for v in per.values()) / max(1, sum(len(v) for v in per.values())),
            "templates_without_example": missing}


def compare_modes(sampler: Sampler, examples: Sequence[Example], *, modes: Sequence[str] = ("nearest", "fixed"),
                  k: int = 4, temperature: float = 0.7, max_tokens: int = 128, seed: int = 0,
                  tools: Any = "shapes", k_examples: int = 4, progress: Any = None,
                  on_mode: Any = None, exclude_same_template: bool = False,
                  library: Library | None = None) -> list[ModeResult]:
    """Sample and check programs for every example under each prompt mode (leave-template-out
    with ``exclude_same_template``; ``library`` instead of the packaged one)."""
    from vpd.tools import load

    toolbox = load(tools) if isinstance(tools, str) else tools
    builder = PromptBuilder(toolbox.tools, library=library, count_tokens=sampler.count_tokens)
    results = []
    for mode in modes:
        t0 = time.perf_counter()
        prompts = [builder.build(ex.question, ex.choices, k_examples=k_examples, mode=mode,
                                 exclude_same_template=exclude_same_template) for ex in examples]
        cands: list[list] = []
        step = 8
        for i in range(0, len(prompts), step):
            cands += sample_programs(sampler, prompts[i:i + step], k=k, temperature=temperature,
                                     max_tokens=max_tokens, seed=seed + i, greedy_first=True)
            if progress:
                progress(mode, min(i + step, len(prompts)), len(prompts))
        n_valid = greedy = within = same_last = 0
        per: dict[str, list[tuple[int, int]]] = {}
        tokens = 0
        for ex, prompt, cs in zip(examples, prompts, cands):
            oks = []
            for c in cs:
                tokens += c.completion_tokens
                if c.program is None:
                    oks.append(False)
                    continue
                n_valid += 1
                status, answer = _run(c.program, ex, toolbox)
                oks.append(status == "ok" and _check(ex, answer))
            greedy += int(bool(oks) and oks[0])
            within += int(any(oks))
            last = builder.library.get(prompt.example_ids[-1]) if prompt.example_ids else None
            same_last += int(last is not None and last.template == ex.metadata.get("template"))
            per.setdefault(ex.qtype, []).append((int(bool(oks) and oks[0]), int(any(oks))))
        n = max(1, len(examples))
        results.append(ModeResult(
            mode=mode, questions=len(examples), candidates=sum(len(c) for c in cands),
            valid=n_valid / max(1, sum(len(c) for c in cands)), greedy_correct=greedy / n,
            correct_within_k=within / n, same_template_last=same_last / n,
            per_qtype={q: {"n": len(v), "greedy": sum(a for a, _ in v) / len(v), "within_k": sum(b for _, b in v) / len(v)}
                       for q, v in sorted(per.items())},
            seconds=time.perf_counter() - t0, completion_tokens=tokens,
            exclude_same_template=exclude_same_template))
        if on_mode:
            on_mode(results[-1])
    return results


def _dataset(n_scenes: int, seed: int, root: Path) -> list[Example]:
    from vpd.benchmarks.shapes import make_dataset
    from vpd.datasets import read_examples

    folder = root / f"shapes-n{n_scenes}-s{seed}"
    if not (folder / "examples.jsonl").is_file():
        make_dataset(folder, n=n_scenes, seed=seed)
    examples, _ = read_examples(folder / "examples.jsonl")
    return examples


def main(argv: Sequence[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--questions", type=int, default=40, help="questions to sample programs for")
    ap.add_argument("--seed", type=int, default=11, help="shapes world seed (unseen by the library)")
    ap.add_argument("--k", type=int, default=4)
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--max-tokens", type=int, default=128)
    ap.add_argument("--sampler", default="gemma")
    ap.add_argument("--modes", default="nearest,fixed")
    ap.add_argument("--oracle-only", action="store_true", help="only check the library (no LLM)")
    ap.add_argument("--exclude-same-template", action="store_true",
                    help="leave-template-out: never offer an example written for the question's template")
    ap.add_argument("--library", default=None, help="a program library folder (default: the packaged one)")
    ap.add_argument("--data-root", default="/tmp/vpd-fewshot-eval")
    ap.add_argument("--out", default=None, help="write the results as JSON here")
    args = ap.parse_args(argv)
    from rich.console import Console
    from rich.table import Table

    console = Console()
    examples = _dataset(max(4, args.questions), args.seed, Path(args.data_root))
    # one question per scene first, then more, so the sample spans many scenes and templates
    examples = sorted(examples, key=lambda e: (e.id.rsplit("-q", 1)[-1], e.id))[:args.questions]
    library = load_library(args.library) if args.library else None
    oracle = library_oracle(examples, library)
    console.print(f"library oracle (same-template copy): {oracle['overall']:.0%}; "
                  f"templates without an example: {oracle['templates_without_example'] or 'none'}")
    out: dict[str, Any] = {"oracle": oracle, "questions": len(examples), "seed": args.seed,
                           "exclude_same_template": args.exclude_same_template,
                           "library": args.library or "packaged", "library_size": len(library or load_library())}
    if not args.oracle_only:
        from vpd.programs.sampler_base import load_sampler
        from vpd.programs.prompt import PROMPT_VERSION

        sampler = load_sampler(args.sampler, **({"batch_size": 8} if args.sampler == "gemma" else {}))
        res = compare_modes(sampler, examples, modes=args.modes.split(","), k=args.k,
                            temperature=args.temperature, max_tokens=args.max_tokens,
                            exclude_same_template=args.exclude_same_template, library=library,
                            progress=lambda m, i, n: console.print(f"  {m}: {i}/{n}", highlight=False),
                            on_mode=lambda r: console.print(r, highlight=False))
        lto = ", leave-template-out" if args.exclude_same_template else ""
        table = Table(title=f"{sampler.name}, {len(examples)} questions, k={args.k}, {PROMPT_VERSION}{lto}, "
                            f"library of {out['library_size']}")
        for col in ("mode", "valid", "greedy correct", f"correct within k={args.k}", "same template last", "s", "tokens"):
            table.add_column(col)
        for r in res:
            table.add_row(r.mode, f"{r.valid:.0%}", f"{r.greedy_correct:.0%}", f"{r.correct_within_k:.0%}",
                          f"{r.same_template_last:.0%}", f"{r.seconds:.0f}", str(r.completion_tokens))
        console.print(table)
        out.update(prompt_version=PROMPT_VERSION, sampler=sampler.describe(),
                   modes=[r.__dict__ for r in res])
    if args.out:
        Path(args.out).write_text(json.dumps(out, indent=2, default=str))


if __name__ == "__main__":
    main()
