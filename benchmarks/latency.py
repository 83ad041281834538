"""Latency and build-time benchmark on this machine (not a test: numbers go to the README).

    .venv/bin/python benchmarks/latency.py [--dataset evals/datasets/dev.jsonl] [--repeat 3]

Warm means: the model and index are loaded and each question was asked once before timing.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import Assistant  # noqa: E402
from assistant.config import load_settings  # noqa: E402
from evals.dataset import load_dataset  # noqa: E402


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q / 100 * (len(ordered) - 1))))]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default=str(ROOT / "evals" / "datasets" / "dev.jsonl"))
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    items, _ = load_dataset(args.dataset)

    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        assistant = Assistant.load(settings=load_settings(index_dir=Path(tmp) / "index"))
        cold = time.perf_counter() - started
        build = assistant.index.manifest["build_seconds"]

        for item in items:  # warm-up: every query embedding computed once
            assistant.ask(item.question, history=list(item.history))
        ask_ms, search_ms, embed_ms = [], [], []
        for _ in range(args.repeat):
            for item in items:
                assistant.embedder._query_cache.clear()  # noqa: SLF001 - time the real embedding
                t0 = time.perf_counter()
                assistant.ask(item.question, history=list(item.history))
                ask_ms.append((time.perf_counter() - t0) * 1000)
                assistant.embedder._query_cache.clear()  # noqa: SLF001
                t0 = time.perf_counter()
                assistant.search(item.question)
                search_ms.append((time.perf_counter() - t0) * 1000)
                t0 = time.perf_counter()
                assistant.embedder.embed_queries([item.question])
                embed_ms.append((time.perf_counter() - t0) * 1000)

    report = {
        "items": len(items), "repeat": args.repeat,
        "index_build_s": build, "load_with_build_s": round(cold, 2),
        "ask_ms_p50": round(statistics.median(ask_ms), 1), "ask_ms_p95": round(percentile(ask_ms, 95), 1),
        "search_ms_p50": round(statistics.median(search_ms), 1),
        "search_ms_p95": round(percentile(search_ms, 95), 1),
        "query_embedding_ms_p50": round(statistics.median(embed_ms), 1),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
