"""LLM engine benchmark on this machine (not a test): time to first token, full answer, memory.

    .venv/bin/python benchmarks/llm.py [--engine llm] [--limit 40]

Questions are the dev set's (history included); abstentions never reach the model and are left out
of the timing percentiles. Warm: the model is loaded and one question was answered first.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from assistant import Answer, Assistant  # noqa: E402
from evals.dataset import load_dataset  # noqa: E402


def resident_mb() -> tuple[float, float]:
    """Current and peak resident memory of this process (VmRSS, VmHWM), in MB."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines() if ":" in line)
    return tuple(int(fields[k].split()[0]) / 1024 for k in ("VmRSS", "VmHWM"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--dataset", default=str(ROOT / "evals" / "datasets" / "dev.jsonl"))
    parser.add_argument("--engine", default="llm")
    parser.add_argument("--limit", type=int, default=40)
    args = parser.parse_args()
    items = [i for i in load_dataset(args.dataset)[0] if i.answerable][: args.limit]
    started = time.perf_counter()
    assistant = Assistant.load(engine=args.engine)
    assistant.ask(items[0].question)  # warm-up: model loaded, system prompt cached
    load_s = time.perf_counter() - started
    first, full, fallbacks = [], [], 0
    for item in items:
        t0 = time.perf_counter()
        first_piece = None
        for piece in assistant.stream(item.question, history=list(item.history)):
            if first_piece is None and isinstance(piece, str):
                first_piece = time.perf_counter() - t0
            if isinstance(piece, Answer):
                answer = piece
        if answer.abstained:
            continue
        first.append(first_piece * 1000)
        full.append((time.perf_counter() - t0) * 1000)
        fallbacks += bool(answer.notices)
    rss, peak = resident_mb()
    print(json.dumps({
        "engine": args.engine, "questions": len(items), "generated": len(full), "fallbacks": fallbacks,
        "load_and_warmup_s": round(load_s, 1),
        "first_token_ms_p50": round(statistics.median(first)), "first_token_ms_max": round(max(first)),
        "full_answer_ms_p50": round(statistics.median(full)), "full_answer_ms_max": round(max(full)),
        "resident_mb": round(rss), "peak_resident_mb": round(peak),
    }, indent=2))


if __name__ == "__main__":
    main()
