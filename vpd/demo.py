"""`vpd demo`: the whole pipeline end to end on the offline default (shapes world + packaged Gemma).

    data ─▶ synth (Gemma writes programs, sandbox runs them on the shapes tools, checker verifies)
         ─▶ rationalize (traces → rationales) ─▶ lskd (region triples + trained critic)
         ─▶ mix (VPD multitask mixture + exports) ─▶ train (tiny Flax student) ─▶ predict + eval
         ─▶ view (HTML report)

Sizes (``--size``) bound the LLM work by the number of *distinct* questions sampled (programs are
sampled once per distinct question and run on every image asking it):

========  ======  =================  ===============  ============
size      scenes  distinct questions  training steps   LSKD images
========  ======  =================  ===============  ============
tiny      100     3                  60               2
small     400     10                 300              4
medium    1000    40                 800              16
large     3000    150                2000             64
========  ======  =================  ===============  ============

``tiny`` is a smoke run (a few minutes on 2 cores): every stage runs and writes its outputs, but the
student is far too small and short-trained for its accuracy to mean anything.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from rich.console import Console
from rich.table import Table

from vpd.datasets import read_examples, write_examples
from vpd.question_select import pick_frequent_questions


@dataclass(frozen=True, kw_only=True)
class DemoSize:
    """One ``--size`` preset."""

    scenes: int
    per_image: int
    questions: int
    max_examples: int
    k: int
    steps: int
    lskd_images: int
    test_examples: int


SIZES: dict[str, DemoSize] = {
    "tiny": DemoSize(scenes=100, per_image=6, questions=3, max_examples=40, k=2, steps=60, lskd_images=2,
                     test_examples=30),
    "small": DemoSize(scenes=400, per_image=6, questions=10, max_examples=200, k=4, steps=300, lskd_images=4,
                      test_examples=120),
    "medium": DemoSize(scenes=1000, per_image=6, questions=40, max_examples=800, k=4, steps=800, lskd_images=16,
                       test_examples=300),
    "large": DemoSize(scenes=3000, per_image=6, questions=150, max_examples=4000, k=5, steps=2000,
                      lskd_images=64, test_examples=800),
}


class Stages:
    """Runs named stages, timing each and printing what it did."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.times: dict[str, float] = {}
        self.notes: dict[str, str] = {}

    def run(self, name: str, fn: Callable[[], str]) -> None:
        self.console.rule(f"[bold]{name}")
        t0 = time.perf_counter()
        note = fn()
        self.times[name] = time.perf_counter() - t0
        self.notes[name] = note
        self.console.print(f"[green]✔ {name}[/] in {self.times[name]:.1f} s — {note}")


def run_demo(out: str | Path = "runs/demo", *, size: str = "small", llm: str = "gemma", seed: int = 0,
             console: Console | None = None) -> dict[str, Any]:
    """Run every stage into ``out``; returns a summary dict (also written to ``out/demo.json``)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    console = console or Console()
    preset = SIZES[size]
    out = Path(out).resolve()
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    st = Stages(console)
    state: dict[str, Any] = {}
    t_start = time.perf_counter()

    # 1. data --------------------------------------------------------------------------------
    def data() -> str:
        from vpd.benchmarks.shapes import make_dataset

        make_dataset(out / "data", n=preset.scenes, seed=seed, per_image=preset.per_image)
        examples, _ = read_examples(out / "data")
        train = [e for e in examples if e.metadata.get("split") == "train"]
        test = [e for e in examples if e.metadata.get("split") == "test"][: preset.test_examples]
        chosen = pick_frequent_questions(train, preset.questions, preset.max_examples)
        write_examples(chosen, out / "train" / "examples.jsonl")
        write_examples(train, out / "train_all" / "examples.jsonl")  # label task on every train example
        write_examples(test, out / "test" / "examples.jsonl")
        state["train_n"], state["test_n"] = len(chosen), len(test)
        distinct = len({(e.question, e.choices) for e in chosen})
        return (f"{preset.scenes} scenes, {len(examples)} questions ({len(train)} train); synth on {len(chosen)} examples "
                f"({distinct} distinct questions), eval on {len(test)} test examples")

    st.run("data", data)

    # the LLM is loaded once and shared by synth and LSKD
    def load_llm() -> str:
        from vpd.programs.sampler_base import load_sampler

        state["sampler"] = load_sampler(llm)
        return f"sampler {state['sampler'].name}"

    st.run("load LLM", load_llm)

    # 2. synth -------------------------------------------------------------------------------
    def synth() -> str:
        from vpd.synth import SynthConfig, run_synth
        from vpd.synth_report import print_report

        res = run_synth(SynthConfig(data=str(out / "train"), out=str(out / "synth"), llm=llm, tools="shapes",
                                    k=preset.k, seed=seed, workers=2, cache="memory"), sampler=state["sampler"])
        print_report(res.report)
        overall = res.report.get("overall", {})
        state["synth_report"] = res.report
        share = float(overall.get("verified_share", 0.0))
        n = int(overall.get("examples", 0))
        return (f"verified {round(share * n)}/{n} examples ({100 * share:.0f}%), pass@1 "
                f"{100 * float(overall.get('pass@1', 0)):.0f}%, pass@{preset.k} "
                f"{100 * float(overall.get(f'pass@{preset.k}', 0)):.0f}%")

    st.run("synth", synth)

    # 3. rationales --------------------------------------------------------------------------
    def rationalize() -> str:
        from vpd.distill.rationalize import rationalize_run

        rep = rationalize_run(out / "synth", rewriter="template")
        d = rep.to_dict() if hasattr(rep, "to_dict") else dict(vars(rep))
        return f"{d.get('written', d.get('rationales', '?'))} rationales from {d.get('verified')} verified examples"

    st.run("rationalize", rationalize)

    # 4. LSKD ---------------------------------------------------------------------------------
    def lskd() -> str:
        from vpd.distill.lskd_run import LskdConfig, run_lskd

        rep = run_lskd(LskdConfig(data=str(out / "train"), out=str(out / "lskd"), llm=llm, tools="shapes",
                                  max_images=preset.lskd_images, seed=seed), sampler=state["sampler"])
        held = (rep.critic or {}).get("heldout") or {}
        f1 = held.get("f1")
        return (f"{sum(rep.triples.values())} triples ({', '.join(f'{k} {v}' for k, v in rep.triples.items())}), "
                f"kept {rep.kept}; critic on held-out labelled triples: "
                + (f"P {held.get('precision', 0):.2f} R {held.get('recall', 0):.2f} F1 {f1:.2f}" if f1 is not None
                   else "not trained"))

    st.run("lskd", lskd)
    sampler = state.pop("sampler")
    sampler.close()

    # 5. mixture -----------------------------------------------------------------------------
    def mix() -> str:
        from vpd.distill.exports import export
        from vpd.distill.mixture import build_mixture

        rep = build_mixture([out / "synth", out / "lskd", out / "train_all"], out / "mix", seed=seed)
        export(out / "mix", "llava", out / "mix" / "llava")
        return f"mixture {rep.counts} → {out / 'mix'} (+ LLaVA export)"

    st.run("mix", mix)

    # 6. train --------------------------------------------------------------------------------
    def train() -> str:
        from vpd.distill.vlm_train import default_recipe, train as train_student

        res = train_student(out / "mix", "tiny", out / "student", default_recipe(steps=preset.steps, seed=seed))
        d = res.__dict__ if hasattr(res, "__dict__") else {}
        return f"student → {out / 'student'} (final loss {d.get('final_loss', '?')})"

    st.run("train", train)

    # 7. evaluate ----------------------------------------------------------------------------
    def evaluate() -> str:
        from vpd.evaluation import evaluate_model, results_markdown, write_results

        rec = evaluate_model("shapes", out / "test", out / "student", out / "synth" / "eval-student")
        path = write_results(rec, out / "synth" / "eval-student")
        doc = json.loads(Path(path).read_text()) if Path(path).suffix == ".json" else json.loads(
            (out / "synth" / "eval-student" / "results.json").read_text())
        console.print(results_markdown(doc))
        acc = doc.get("metrics", {}).get("accuracy")
        state["student_accuracy"] = acc
        return f"student accuracy on {state['test_n']} test questions: {acc}"

    st.run("evaluate", evaluate)

    # 8. report -------------------------------------------------------------------------------
    def view() -> str:
        from vpd.view_report import write_report

        state["report"] = write_report(out / "synth", also=[out / "student", out / "lskd"])
        return f"report → {state['report']}"

    st.run("view", view)

    total = time.perf_counter() - t_start
    table = Table(title=f"vpd demo ({size}) — {total / 60:.1f} min")
    table.add_column("stage")
    table.add_column("seconds", justify="right")
    table.add_column("what it did")
    for name, secs in st.times.items():
        table.add_row(name, f"{secs:.1f}", st.notes[name])
    console.print(table)
    summary = {"size": size, "out": str(out), "seconds": st.times, "notes": st.notes, "total_s": total,
               "report": str(state.get("report")), "student_accuracy": state.get("student_accuracy")}
    (out / "demo.json").write_text(json.dumps(summary, indent=2, default=str))
    console.print(f"Outputs: {out}  ·  open the report: {state.get('report')}")
    return summary
