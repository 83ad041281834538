"""Running an eval dataset through the public ``Assistant`` API, as an outside evaluator would."""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from .dataset import EvalItem
from .metrics import compute_metrics, first_hit_rank, is_correct


def run_item(assistant: Any, item: EvalItem, k: int | None = None) -> dict[str, Any]:
    started = time.perf_counter()
    answer = assistant.ask(item.question, history=list(item.history), k=k)
    latency = (time.perf_counter() - started) * 1000
    retrieved = [p.text for p in answer.retrieved]
    result = {
        "id": item.id, "question": item.question, "category": item.category,
        "answer": answer.text, "abstained": answer.abstained, "query": answer.query,
        "citations": [{"number": c.number, "text": c.text, "source": c.source, "section": c.section,
                       "quotes": c.quotes} for c in answer.citations],
        "retrieved": retrieved,
        "retrieval_rank": first_hit_rank(retrieved, item.evidence) if item.evidence else None,
        "latency_ms": round(latency, 2),
        "expected": [list(g) for g in item.must_include], "evidence": list(item.evidence),
        "answerable": item.answerable,
    }
    result["correct"] = is_correct(item, result)
    return result


def run_dataset(assistant: Any, items: list[EvalItem], k: int | None = None,
                progress: Callable[[Iterable], Iterable] = lambda it: it) -> dict[str, Any]:
    results = [run_item(assistant, item, k) for item in progress(items)]
    return {"metrics": compute_metrics(items, results), "items": results}
