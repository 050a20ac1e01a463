"""The attack corpus (tests/attacks/corpus.txt, ~150 exploits) run through the sandbox.

One pool runs the whole corpus once (``map`` over 2 workers, 1 s deadline each); each test then
checks one property of one attack. See vpd.sandbox.attack_corpus for the format.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vpd.sandbox.attack_corpus import DEFAULT_CORPUS, MARKER, attack_image, contained, parse_corpus

ATTACKS = parse_corpus(DEFAULT_CORPUS.read_text(encoding="utf-8"))
SECRET_NAME, SECRET_VALUE = "VPD_SANDBOX_TEST_SECRET", "s3cr3t-7f1d2c"
CANARY = Path("/tmp/vpd_sandbox_pwned")


@pytest.fixture(scope="module")
def corpus_results():
    from vpd.sandbox import SandboxPool
    from vpd.tools.toolbox import Toolbox

    os.environ[SECRET_NAME] = SECRET_VALUE  # a host secret the workers must never see
    cwd = os.getcwd()
    try:
        with SandboxPool(workers=2, tools=Toolbox({}), timeout_s=1.0, memory_mb=256) as pool:
            image_id = pool.add_image(attack_image())
            results = pool.map([{"source": a.source, "image": image_id} for a in ATTACKS])
            pids_alive = [p for p in pool.worker_pids() if _alive(p)]
    finally:
        os.environ.pop(SECRET_NAME, None)
    return {"results": dict(zip((a.name for a in ATTACKS), results)), "cwd": cwd, "alive": pids_alive}


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
        return True
    except ProcessLookupError:
        return False


def test_corpus_is_large_and_names_are_unique():
    assert len(ATTACKS) >= 100
    assert len({a.name for a in ATTACKS}) == len(ATTACKS)


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_is_contained(attack, corpus_results):
    r = corpus_results["results"][attack.name]
    assert contained(attack, r.status, r.answer, r.stdout), (r.status, r.error, r.answer)


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_leaks_no_host_secret(attack, corpus_results):
    r = corpus_results["results"][attack.name]
    assert SECRET_VALUE not in r.to_json()


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.name for a in ATTACKS])
def test_attack_answer_is_plain_data(attack, corpus_results):
    from vpd.sandbox.result import is_plain

    assert is_plain(corpus_results["results"][attack.name].answer)


def test_no_attack_wrote_a_file(corpus_results):
    assert not CANARY.exists()


def test_host_cwd_unchanged(corpus_results):
    assert os.getcwd() == corpus_results["cwd"]


def test_timeouts_killed_the_worker_and_were_reported(corpus_results):
    r = corpus_results["results"]["loop/while-true"]
    assert r.status == "timeout" and "exceeded 1 s" in r.error


def test_print_flood_is_capped(corpus_results):
    r = corpus_results["results"]["print/flood-finite"]
    assert r.status == "ok" and len(r.stdout) <= 65_536 + 200 and "stdout truncated" in r.stdout


def test_marker_not_in_any_result(corpus_results):
    assert not [n for n, r in corpus_results["results"].items() if r.answer == MARKER]
