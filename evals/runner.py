"""Running an eval dataset through the public ``Assistant`` API, as an outside evaluator would.

Anything with the duck-typed ``ask(question, history=..., k=...) -> assistant.Answer`` can be run:
an ``Assistant``, one of its ``variant(...)``, or the plain llama-index baseline.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Iterable

from .dataset import EvalItem
from .metrics import compute_metrics, failure_reasons, first_hit_rank, is_correct


def _citation(c: Any) -> dict[str, Any]:
    quotes = getattr(c, "quotes", None)
    return {"number": c.number, "text": c.text, "source": c.source, "section": c.section,
            "start": getattr(c, "start", None), "end": getattr(c, "end", None),
            "quotes": list(quotes) if quotes is not None else []}


def run_item(assistant: Any, item: EvalItem, k: int | None = None) -> dict[str, Any]:
    """Ask one item (history included) and score it; an exception becomes a failed item."""
    started = time.perf_counter()
    error = None
    try:
        answer = assistant.ask(item.question, history=[dict(t) for t in item.history], k=k)
    except Exception as exc:  # one broken item must not lose the whole run
        answer, error = None, f"{type(exc).__name__}: {exc}"
    latency = (time.perf_counter() - started) * 1000
    retrieved = [p.text for p in answer.retrieved] if answer is not None else []
    result = {
        "id": item.id, "question": item.question, "category": item.category,
        "history": [dict(t) for t in item.history], "lang": item.lang,
        "answer": answer.text if answer is not None else "",
        "abstained": bool(answer.abstained) if answer is not None else False,
        "query": answer.query if answer is not None else None,
        "citations": [_citation(c) for c in answer.citations] if answer is not None else [],
        "retrieved": retrieved,  # texts, for the metrics (results.json keeps the locations below)
        "retrieved_passages": [{"rank": n, "source": p.source, "section": p.section, "start": p.start, "end": p.end,
                                "score": p.score} for n, p in enumerate(answer.retrieved, start=1)]
        if answer is not None else [],
        "retrieval_rank": first_hit_rank(retrieved, item.evidence) if item.evidence else None,
        "latency_ms": round(latency, 2),
        "expected": [list(g) for g in item.must_include], "evidence": list(item.evidence),
        "reference_answer": item.reference_answer, "answerable": item.answerable,
        "confidence": getattr(answer, "confidence", None), "certainty": getattr(answer, "certainty", None),
    }
    if error:
        result["error"] = error
    result["correct"] = is_correct(item, result)
    reasons = failure_reasons(item, result)
    result["reason"] = "; ".join(reasons) or None
    result["status"] = "fail" if not result["correct"] else ("warn" if reasons else "pass")
    return result
