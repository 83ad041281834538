"""Load test of the web app (`make loadtest`; not part of `make test`).

    .venv/bin/python benchmarks/loadtest.py [--clients 20] [--questions 5] [--out data/loadtest.json]

Serves the real app (`assistant serve`, its own process) on a loopback port, then:
1. one client asks every conversation alone, one request at a time (the reference answers and the
   single-client latency);
2. on a second, fresh server (both phases start with a cold query cache), ``--clients`` web
   clients (each its own HTTP connection to Gradio's plain HTTP API, all driven by one asyncio
   loop) ask their conversations at the same time: ``--questions`` questions each, every one with
   that client's own history so far.
Every concurrent answer must equal the single client's answer to the same question and history.
Prints errors, mismatches, p50 / p95 for both runs and the ratio; exits 1 when an answer differs or
a request fails. Traffic goes to 127.0.0.1 only, and the run is bounded (clients x questions).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import socket
import statistics
import sys
import time
from pathlib import Path
from typing import Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import Assistant  # noqa: E402
from assistant.config import prepare_environment  # noqa: E402
from evals.dataset import load_dataset  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def conversations(clients: int, questions: int) -> list[list[str]]:
    """Distinct conversations: the dev set's standalone questions, rotated per client."""
    items, _ = load_dataset(ROOT / "evals" / "datasets" / "dev.jsonl")
    pool = [i.question for i in items if not i.history]
    return [[pool[(c * 7 + q) % len(pool)] for q in range(questions)] for c in range(clients)]


async def ask(http, question: str, history: list[dict]) -> dict:
    """One call of the documented /ask endpoint over Gradio's plain HTTP API (POST, then its event stream)."""
    started = await http.post("gradio_api/call/ask", json={"data": [question, history]})
    started.raise_for_status()
    event_id = started.json()["event_id"]
    event = None
    async with http.stream("GET", f"gradio_api/call/ask/{event_id}") as stream:
        async for line in stream.aiter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                data = json.loads(line.split(":", 1)[1])
                if event == "error":
                    raise RuntimeError(f"/ask error: {data}")
                return data[0]
    raise RuntimeError("/ask: the stream ended without an answer")


async def run_conversation(url: str, questions: list[str]) -> list[dict]:
    """One web client: its own connection, its questions one after the other with its history."""
    import httpx

    results, history = [], []
    async with httpx.AsyncClient(base_url=url, timeout=120) as http:
        for question in questions:
            started = time.perf_counter()
            try:
                answer, error = await ask(http, question, history), None
            except Exception as exc:  # counted, not raised: the run reports every failure
                answer, error = None, f"{type(exc).__name__}: {exc}"
            results.append({"question": question, "history": list(history), "error": error,
                            "latency_ms": (time.perf_counter() - started) * 1000,
                            "text": answer["text"] if answer else None,
                            "citations": [(c["source"], c["start"], c["end"]) for c in answer["citations"]]
                            if answer else None})
            history += [{"role": "user", "content": question},
                        {"role": "assistant", "content": answer["text"] if answer else ""}]
    return results


@contextlib.contextmanager
def served() -> Iterator[tuple[str, int]]:
    """``assistant serve`` in its own process on a free loopback port, until the block ends."""
    import subprocess

    import httpx

    port = free_port()
    url = f"http://127.0.0.1:{port}/"
    server = subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 300
        while True:  # wait until it answers
            try:
                if httpx.get(url + "config", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if server.poll() is not None or time.time() > deadline:
                raise SystemExit("the server did not start")
            time.sleep(0.5)
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), to tell the server's cost from the clients'."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> int:
    prepare_environment()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--out", default=str(ROOT / "data" / "loadtest.json"))
    args = parser.parse_args()
    settings = Assistant.load().settings  # builds the index if needed, before any server starts
    plans = conversations(args.clients, args.questions)

    # Each phase gets a fresh server: both start with a cold query cache, as real, distinct users do.
    with served() as (url, _):
        asyncio.run(run_conversation(url, ["Bonjour ?"]))  # first-call costs (thread pools, lazy imports)
        reference = [asyncio.run(run_conversation(url, plan)) for plan in plans]  # one client at a time

    async def everyone(url: str) -> list[list[dict]]:
        return list(await asyncio.gather(*(run_conversation(url, plan) for plan in plans)))

    with served() as (url, pid):
        asyncio.run(run_conversation(url, ["Bonjour ?"]))
        server_cpu = _cpu_seconds(pid)
        started = time.perf_counter()
        concurrent = asyncio.run(everyone(url))
        wall = time.perf_counter() - started
        server_cpu = _cpu_seconds(pid) - server_cpu

    single = [r["latency_ms"] for conv in reference for r in conv]
    many = [r["latency_ms"] for conv in concurrent for r in conv]
    errors = sum(1 for conv in concurrent for r in conv if r["error"]) + sum(1 for conv in reference for r in conv if r["error"])
    mismatches = sum(1 for a, b in zip(reference, concurrent) for x, y in zip(a, b)
                     if (x["text"], x["citations"]) != (y["text"], y["citations"]))
    summary = {
        "clients": args.clients, "questions_per_client": args.questions, "requests": len(many),
        "max_concurrent_requests": settings.max_concurrent_requests,
        "errors": errors, "answers_differing_from_single_client": mismatches,
        "single_client_ms": {"p50": round(statistics.median(single), 1), "p95": round(percentile(single, 95), 1)},
        "concurrent_ms": {"p50": round(statistics.median(many), 1), "p95": round(percentile(many, 95), 1)},
        "p50_ratio": round(statistics.median(many) / statistics.median(single), 2),
        "concurrent_wall_s": round(wall, 2), "throughput_per_s": round(len(many) / wall, 1),
        "server_cpu_ms_per_request": round(server_cpu * 1000 / len(many), 1),
    }
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(json.dumps(summary, indent=2))
    return 1 if errors or mismatches else 0


if __name__ == "__main__":
    sys.exit(main())
