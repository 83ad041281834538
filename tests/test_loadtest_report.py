"""Issue 26.14: the load test reports throughput, server CPU per answer and their ratio to the cores'
capacity (cores / CPU per answer), and accepts a run with no error, identical answers and a
throughput of at least 0.8 x capacity. The report alone, from made-up results (no server)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest

from assistant.config import PROJECT_ROOT


@pytest.fixture(scope="module")
def loadtest():
    spec = importlib.util.spec_from_file_location("loadtest", PROJECT_ROOT / "benchmarks" / "loadtest.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _results(texts: list[list[str]], latency: float = 40.0, error: str | None = None) -> list[list[dict]]:
    return [[{"question": f"q{c}{q}", "history": [], "error": error, "latency_ms": latency, "text": text,
              "citations": [("a.txt", 0, 10)]} for q, text in enumerate(conversation)]
            for c, conversation in enumerate(texts)]


ANSWERS = [["a", "b", "c", "d", "e"]] * 20  # 20 clients x 5 questions


def test_throughput_is_measured_against_the_cores_capacity(loadtest) -> None:
    reference, concurrent = _results(ANSWERS), _results(ANSWERS, latency=400.0)
    # 100 answers in 2.5 s (40/s), 2.0 s of server CPU (20 ms each): 2 cores give 100/s.
    summary = loadtest.summarize(reference, concurrent, wall_s=2.5, server_cpu_s=2.0, cores=2,
                                 client_cpu_s=1.0, machine_cpu_s=4.5, clients=20)
    assert summary["requests"] == 100 and summary["throughput_per_s"] == 40.0
    assert summary["server_cpu_ms_per_answer"] == 20.0 and summary["capacity_per_s"] == 100.0
    assert summary["throughput_to_capacity"] == 0.4 and summary["server_cpu_share"] == 0.4
    assert summary["clients_cpu_ms_per_answer"] == 10.0 and summary["clients_cpu_share"] == 0.2
    assert summary["other_processes_cpu_share"] == 0.3
    assert summary["server_share_of_cpu_left"] == 0.8  # 2.0 s of the 5.0 - 1.0 - 1.5 left to it
    assert summary["concurrent_ms"]["p50"] == 400.0 and summary["single_client_ms"]["p50"] == 40.0
    assert "p50_ratio" not in summary  # latency under a closed loop of N clients is not a target
    assert not summary["acceptance"]["passed"] and not summary["acceptance"]["throughput_met"]
    assert "REFUSÉ" in loadtest.verdict(summary) and "40%" in loadtest.verdict(summary)
    json.dumps(summary)  # written as JSON

    fast = loadtest.summarize(reference, concurrent, wall_s=1.2, server_cpu_s=2.0, cores=2)
    assert fast["throughput_to_capacity"] == 0.83 and fast["acceptance"]["passed"]
    assert "ACCEPTÉ" in loadtest.verdict(fast)


def test_an_error_or_a_different_answer_fails_the_run(loadtest) -> None:
    reference = _results(ANSWERS)
    differing = _results([["a", "b", "c", "d", "z"]] + ANSWERS[1:])
    summary = loadtest.summarize(reference, differing, wall_s=1.0, server_cpu_s=1.0, cores=2)
    assert summary["answers_differing_from_single_client"] == 1 and not summary["acceptance"]["passed"]
    failed = _results(ANSWERS)
    failed[3][2]["error"], failed[3][2]["text"] = "HTTPStatusError: 503", None
    summary = loadtest.summarize(reference, failed, wall_s=1.0, server_cpu_s=1.0, cores=2)
    assert summary["errors"] == 1 and not summary["acceptance"]["no_errors"] and not summary["acceptance"]["passed"]
    short = loadtest.summarize(reference, _results([["a", "b"]] + ANSWERS[1:]), wall_s=1.0, server_cpu_s=1.0, cores=2)
    assert short["answers_differing_from_single_client"] == 3 and not short["acceptance"]["passed"]


def test_make_loadtest_runs_the_script_on_this_machine_s_cores(loadtest) -> None:
    makefile = (PROJECT_ROOT / "Makefile").read_text(encoding="utf-8")
    target = makefile.split("\nloadtest:", 1)[1].split("\n\n", 1)[0]
    assert "benchmarks/loadtest.py" in target
    assert loadtest.cores() >= 1
    assert Path(loadtest.__file__).name == "loadtest.py"
