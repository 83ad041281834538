"""Load test of the web app (`make loadtest`; not part of `make test`).

    .venv/bin/python benchmarks/loadtest.py [--clients 20] [--questions 5] [--out data/loadtest.json]

Serves the real app (`assistant serve`, its own process) on a loopback port, then:
1. one client asks every conversation alone, one request at a time (the reference answers and the
   single-client latency);
2. on a second, fresh server (both phases start with a cold query cache), ``--clients`` web
   clients (each its own keep-alive HTTP connection to Gradio's plain HTTP API, spoken by hand to
   cost the shared cores little, all driven by one asyncio loop) ask their conversations at the same time: ``--questions`` questions each, every one with
   that client's own history so far.

What it measures is what load asks of a server on a few cores: does it turn all of them into
answers? Throughput (answers per second under load), the server's CPU per answer (its process's
user + system time over the answers), and from them the cores' capacity, ``cores / CPU per
answer`` answers per second. Acceptance: no request fails, every concurrent answer equals the
single client's answer to the same question and history, and throughput reaches
``--min-ratio`` (0.8) of capacity. (Latency under N clients in a closed loop is about N / throughput
whatever the server does, so a latency ratio to one client alone is not a target; p50 / p95 are
still reported.) The CPU the clients and the machine's other processes used meanwhile is reported
beside it. Prints the summary (JSON), writes it to ``--out``; exits 1 when a criterion is missed.
Traffic goes to 127.0.0.1 only, and the run is bounded (clients x questions).
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
from typing import Any, Iterator

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import Assistant  # noqa: E402
from assistant.config import prepare_environment  # noqa: E402
from evals.dataset import load_dataset  # noqa: E402
from ui.workers import default_workers  # noqa: E402


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


class Connection:
    """One client's keep-alive HTTP/1.1 connection, spoken by hand over asyncio streams: a general
    HTTP client (httpx) cost about 8 ms of CPU per answer on this machine, 40 % of the server's, on
    the same cores; this costs a fraction of that, so the cores are left to the server measured."""

    def __init__(self, url: str) -> None:
        from urllib.parse import urlsplit

        parts = urlsplit(url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def __aenter__(self) -> "Connection":
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        return self

    async def __aexit__(self, *exc: Any) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()

    async def request(self, method: str, path: str, payload: Any = None, timeout: float = 120) -> tuple[int, bytes]:
        body = b"" if payload is None else json.dumps(payload).encode("utf-8")
        head = (f"{method} {path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nContent-Length: {len(body)}\r\n"
                + ("Content-Type: application/json\r\n" if payload is not None else "") + "\r\n")
        assert self.reader is not None and self.writer is not None
        self.writer.write(head.encode("ascii") + body)
        return await asyncio.wait_for(self._response(), timeout)

    async def _response(self) -> tuple[int, bytes]:
        reader = self.reader
        assert reader is not None
        lines = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:] if line)}
        if "content-length" in headers:
            return status, await reader.readexactly(int(headers["content-length"]))
        if headers.get("transfer-encoding", "").lower() == "chunked":
            body = bytearray()
            while True:
                size = int((await reader.readline()).split(b";")[0], 16)
                if size == 0:
                    while (await reader.readline()) not in (b"\r\n", b""):  # trailers, then the end
                        pass
                    return status, bytes(body)
                body += await reader.readexactly(size)
                await reader.readexactly(2)
        return status, await reader.read()  # until the server closes


async def ask(http: Connection, question: str, history: list[dict]) -> dict:
    """One call of the documented /ask endpoint over Gradio's plain HTTP API (POST, then its event stream)."""
    status, body = await http.request("POST", "/gradio_api/call/ask", {"data": [question, history]})
    if status != 200:
        raise RuntimeError(f"/ask: HTTP {status} {body[:200]!r}")
    event_id = json.loads(body)["event_id"]
    status, body = await http.request("GET", f"/gradio_api/call/ask/{event_id}")
    event = None
    for line in body.decode("utf-8").splitlines():
        if line.startswith("event:"):
            event = line.split(":", 1)[1].strip()
        elif line.startswith("data:") and event in ("complete", "error"):
            data = json.loads(line.split(":", 1)[1])
            if event == "error":
                raise RuntimeError(f"/ask error: {data}")
            return data[0]
    raise RuntimeError(f"/ask: the stream ended without an answer (HTTP {status})")


async def run_conversation(url: str, questions: list[str]) -> list[dict]:
    """One web client: its own connection, its questions one after the other with its history."""
    results, history = [], []
    http = Connection(url)
    async with http:
        for question in questions:
            started = time.perf_counter()
            try:
                answer, error = await ask(http, question, history), None
            except Exception as exc:  # counted, not raised: the run reports every failure
                answer, error = None, f"{type(exc).__name__}: {exc}"
                await http.__aexit__()  # the connection's state is unknown: start a new one
                await http.__aenter__()
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
        _settle(server.pid)  # answer workers ready: none of their start-up is measured
        yield url, server.pid
    finally:
        server.terminate()
        server.wait(timeout=30)


def _descendants(pid: int) -> list[int]:
    """The process and every process it started, and theirs (its answer workers; Linux /proc)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo += [int(child) for child in (task / "children").read_text().split()]
    return found


def _cpu_by_process(pid: int) -> dict[int, float]:
    """User + system CPU time of each of the server's processes (Linux /proc)."""
    times = {}
    for process in _descendants(pid):
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{process}/stat").read_text().rsplit(")", 1)[1].split()
            times[process] = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return times


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time of the server (Linux /proc): its process and its children (the answer
    workers), to tell the server's cost from the clients'."""
    return sum(_cpu_by_process(pid).values())


def _peak_rss_mb(pid: int) -> dict[str, float]:
    """Peak resident memory (VmHWM, MB) of the server's process and of each of its children."""
    peaks = {}
    for process in _descendants(pid):
        with contextlib.suppress(OSError, ValueError, StopIteration):
            line = next(x for x in Path(f"/proc/{process}/status").read_text().splitlines() if x.startswith("VmHWM:"))
            peaks[str(process)] = round(int(line.split()[1]) / 1024, 1)
    return peaks


def _settle(pid: int, timeout: float = 300) -> None:
    """Until the server's processes are idle (its answer workers have loaded the model)."""
    deadline = time.time() + timeout
    before = _cpu_seconds(pid)
    while time.time() < deadline:
        time.sleep(1)
        now = _cpu_seconds(pid)
        if now - before < 0.05:
            return
        before = now


def _own_cpu_seconds() -> float:
    """This process's CPU time: the clients (and their event loop)."""
    times = os.times()
    return times.user + times.system


def _busy_cpu_seconds() -> float:
    """CPU time every process of the machine spent so far (all cores; /proc/stat, idle and iowait left out)."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    busy = sum(values[:8]) - values[3] - values[4]  # user nice system idle iowait irq softirq steal
    return busy / os.sysconf("SC_CLK_TCK")


def cores() -> int:
    """The cores this process may run on (what the server's threads may use too)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def summarize(reference: list[list[dict]], concurrent: list[list[dict]], wall_s: float, server_cpu_s: float,
              cores: int, min_ratio: float = 0.8, client_cpu_s: float | None = None,
              machine_cpu_s: float | None = None, **context: Any) -> dict[str, Any]:
    """The report: throughput, server CPU per answer, the cores' capacity (cores / CPU per answer),
    their ratio, latencies, and the verdict (no error, identical answers, throughput >= min_ratio x
    capacity)."""
    single = [r["latency_ms"] for conv in reference for r in conv]
    many = [r["latency_ms"] for conv in concurrent for r in conv]
    requests = len(many)
    errors = sum(1 for conv in (*reference, *concurrent) for r in conv if r["error"])
    mismatches = sum(1 for a, b in zip(reference, concurrent) for x, y in zip(a, b)
                     if (x["text"], x["citations"]) != (y["text"], y["citations"]))
    mismatches += sum(abs(len(a) - len(b)) for a, b in zip(reference, concurrent)) + abs(len(reference) - len(concurrent))
    throughput = requests / wall_s if wall_s > 0 else 0.0
    cpu_per_answer = server_cpu_s / requests if requests else float("inf")
    capacity = cores / cpu_per_answer if cpu_per_answer > 0 else float("inf")
    ratio = throughput / capacity if capacity not in (0, float("inf")) else 0.0
    passed = errors == 0 and mismatches == 0 and requests > 0 and ratio >= min_ratio
    summary: dict[str, Any] = {
        **context, "requests": requests, "errors": errors, "answers_differing_from_single_client": mismatches,
        "cores": cores, "concurrent_wall_s": round(wall_s, 2),
        "throughput_per_s": round(throughput, 1),
        "server_cpu_ms_per_answer": round(cpu_per_answer * 1000, 1),
        "capacity_per_s": round(capacity, 1),
        "throughput_to_capacity": round(ratio, 2),
        "server_cpu_share": round(server_cpu_s / (cores * wall_s), 2) if wall_s > 0 else 0.0,
    }
    if client_cpu_s is not None:
        summary["clients_cpu_ms_per_answer"] = round(client_cpu_s * 1000 / max(requests, 1), 1)
        summary["clients_cpu_share"] = round(client_cpu_s / (cores * wall_s), 2) if wall_s > 0 else 0.0
    if machine_cpu_s is not None:  # the other engineers' work on a shared machine, for instance
        others = max(0.0, machine_cpu_s - server_cpu_s - (client_cpu_s or 0.0))
        summary["other_processes_cpu_share"] = round(others / (cores * wall_s), 2) if wall_s > 0 else 0.0
        # What the server could have had: the cores' time less what the clients and the other
        # processes took. Near 1: the server turned all the CPU it could get into answers.
        left = cores * wall_s - (client_cpu_s or 0.0) - others
        summary["server_share_of_cpu_left"] = round(server_cpu_s / left, 2) if left > 0 else 0.0
    if single and many:
        summary.update({
            "single_client_ms": {"p50": round(statistics.median(single), 1), "p95": round(percentile(single, 95), 1)},
            "concurrent_ms": {"p50": round(statistics.median(many), 1), "p95": round(percentile(many, 95), 1)},
        })
    summary["acceptance"] = {
        "no_errors": errors == 0, "identical_answers": mismatches == 0,
        "throughput_at_least": f"{min_ratio} x capacity", "throughput_met": ratio >= min_ratio, "passed": passed,
    }
    return summary


def verdict(summary: dict[str, Any]) -> str:
    """One French line for the terminal."""
    met = summary["acceptance"]
    left = (f" ; le serveur a pris {summary['server_share_of_cpu_left']:.0%} du CPU que les clients et les autres "
            f"processus ({summary['other_processes_cpu_share']:.0%} des cœurs) lui ont laissé"
            if "server_share_of_cpu_left" in summary else "")
    return (f"{summary['requests']} réponses, {summary['errors']} erreur(s), "
            f"{summary['answers_differing_from_single_client']} différente(s) ; débit {summary['throughput_per_s']} réponses/s "
            f"pour une capacité de {summary['capacity_per_s']} réponses/s ({summary['cores']} cœurs / "
            f"{summary['server_cpu_ms_per_answer']} ms de CPU serveur par réponse) : {summary['throughput_to_capacity']:.0%} "
            f"de la capacité (objectif {met['throughput_at_least']}){left} — {'ACCEPTÉ' if met['passed'] else 'REFUSÉ'}.")


def main() -> int:
    prepare_environment()
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--questions", type=int, default=5)
    parser.add_argument("--min-ratio", type=float, default=0.8, help="throughput to reach, as a share of capacity")
    parser.add_argument("--out", default=str(ROOT / "data" / "loadtest.json"))
    args = parser.parse_args()
    if not 1 <= args.clients <= 200 or not 1 <= args.questions <= 50:
        parser.error("--clients de 1 à 200, --questions de 1 à 50 (la charge reste bornée)")
    settings = Assistant.load().settings  # builds the index if needed, before any server starts
    plans = conversations(args.clients, args.questions)

    # Each phase gets a fresh server: both start with a cold query cache, as real, distinct users do.
    with served() as (url, _):
        asyncio.run(run_conversation(url, ["Bonjour ?"]))  # first-call costs (thread pools, lazy imports)
        reference = [asyncio.run(run_conversation(url, plan)) for plan in plans]  # one client at a time

    async def everyone(url: str) -> list[list[dict]]:
        return list(await asyncio.gather(*(run_conversation(url, plan) for plan in plans)))

    load_before = Path("/proc/loadavg").read_text().split()[:3]
    with served() as (url, pid):
        asyncio.run(run_conversation(url, ["Bonjour ?"]))
        by_process, client_cpu, machine_cpu = _cpu_by_process(pid), _own_cpu_seconds(), _busy_cpu_seconds()
        server_cpu = sum(by_process.values())
        started = time.perf_counter()
        concurrent = asyncio.run(everyone(url))
        wall = time.perf_counter() - started
        after = _cpu_by_process(pid)
        server_cpu = sum(after.values()) - server_cpu
        peaks = _peak_rss_mb(pid)
        answers = max(1, sum(map(len, plans)))
        split = {"serving_process" if p == pid else f"child_{p}": round((t - by_process.get(p, 0.0)) * 1000 / answers, 1)
                 for p, t in after.items()}
        client_cpu, machine_cpu = _own_cpu_seconds() - client_cpu, _busy_cpu_seconds() - machine_cpu

    summary = summarize(reference, concurrent, wall, server_cpu, cores(), args.min_ratio, client_cpu, machine_cpu,
                        clients=args.clients, questions_per_client=args.questions,
                        max_concurrent_requests=settings.max_concurrent_requests,
                        answer_workers=default_workers(settings),
                        load_average_before=" ".join(load_before),
                        server_processes=len(peaks), server_cpu_ms_per_answer_by_process=split,
                        server_peak_rss_mb=peaks,
                        server_peak_rss_total_mb=round(sum(peaks.values()), 1),
                        measured_at=time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(summary, indent=2, ensure_ascii=False), encoding="utf-8")
    print(json.dumps(summary, indent=2, ensure_ascii=False))
    print(verdict(summary))
    return 0 if summary["acceptance"]["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
