"""Shared models are built once, thread-safely: the first use of the few-shot retriever from many
threads at once (what ``vpd synth`` does with a remote writer's questions in flight).

The race is in transformers' lazy first import (``from transformers import AutoModel`` from 8
threads at once fails in most of them), so the hammer runs in a fresh interpreter where nothing
has been imported yet.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

HAMMER = textwrap.dedent("""
    import json, threading
    from vpd.programs.prompt import PromptBuilder
    from vpd.programs.retrieval import Retriever

    QUESTIONS = [("How many red cubes are there?", None), ("Is there a blue sphere?", None),
                 ("What color is the cube?", ("red", "blue", "green", "cyan")),
                 ("Is the red cube left of the green sphere?", None)]
    builder = PromptBuilder()          # nothing built yet: retriever, MiniLM, library matrix are lazy
    retriever = Retriever()
    barrier = threading.Barrier(8)
    out, errors = [None] * 8, []

    def work(i):
        barrier.wait()
        try:
            q, c = QUESTIONS[i % len(QUESTIONS)]
            p = builder.build(q, c, k_examples=3)
            near = [e.id for e in retriever.nearest(q, c, k=3)]
            out[i] = {"q": q, "prompt_ids": list(p.example_ids), "nearest": near}
        except BaseException as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads: t.start()
    for t in threads: t.join()
    print(json.dumps({"out": out, "errors": errors}))
""")


def test_first_use_from_8_threads_is_safe_and_deterministic():
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run([sys.executable, "-c", HAMMER], capture_output=True, text=True, timeout=600, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    got = json.loads(proc.stdout.strip().splitlines()[-1])
    assert got["errors"] == []
    by_question: dict[str, set] = {}
    for row in got["out"]:
        assert row is not None
        by_question.setdefault(row["q"], set()).add((tuple(row["prompt_ids"]), tuple(row["nearest"])))
    assert len(by_question) == 4
    # every thread asking the same question got the same examples, from the builder and the retriever
    assert all(len(v) == 1 for v in by_question.values()), by_question
    # and the builder's prompt examples are the retriever's nearest (one shared model, one library matrix)
    assert all(next(iter(v))[0] == next(iter(v))[1] for v in by_question.values())


def test_synth_warms_shared_models_before_threads():
    """``LLMProgramWriter.warm`` builds the prompt builder, its retriever, MiniLM and the library
    matrix in the calling thread (``run_synth`` calls it before any sampling thread starts)."""
    from vpd.programs import prompt as prompt_mod
    from vpd.synth_config import SessionStats
    from vpd.synth_writer import LLMProgramWriter

    class FakeRemoteSampler:
        remote = True
        kind = "fake"

    writer = LLMProgramWriter(FakeRemoteSampler(), tools=["find", "exists"], fewshot="nearest", temperature=0.7,
                              max_tokens=64, stats=SessionStats())
    writer.warm([("How many red cubes are there?", None)])
    builder = prompt_mod._builder(["exists", "find"], None)
    assert builder._retriever is not None
    assert builder._retriever._matrix is not None and builder._retriever._matrix.shape[1] == 384
    assert builder._retriever.key("How many red cubes are there?") in builder._retriever._cache
