"""The metrics of the shared eval format, with its matching rules, on plain data.

Each item result is a dict with at least: ``answer`` (str), ``abstained`` (bool), ``citations``
(list of {"number": ..., "text": ...}), ``retrieved`` (list of passage texts, best first),
``latency_ms``.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from statistics import median
from typing import Any, Iterable

from assistant.text import normalize_for_match

from .dataset import CATEGORIES, EvalItem

METRIC_KEYS = ("n_items", "hit@1", "hit@3", "hit@5", "mrr", "answer_accuracy", "citation_precision",
               "citation_recall", "abstention_rate", "false_abstention_rate", "token_f1",
               "latency_ms_p50", "latency_ms_p95", "latency_ms_max")


def contains_evidence(text: str, evidence: Iterable[str]) -> bool:
    """A passage hits when it contains one of the excerpts (accents kept)."""
    haystack = normalize_for_match(text)
    return any(normalize_for_match(e) in haystack for e in evidence if e.strip())


def satisfies_group(answer: str, group: Iterable[str]) -> bool:
    """One required fact: the answer contains any of its strings (accents folded)."""
    haystack = normalize_for_match(answer, fold=True)
    return any(normalize_for_match(s, fold=True) in haystack for s in group)


def satisfies(answer: str, must_include: Iterable[Iterable[str]]) -> bool:
    """Every group satisfied by any of its strings (accents folded)."""
    return all(satisfies_group(answer, group) for group in must_include)


def first_hit_rank(passages: list[str], evidence: Iterable[str]) -> int | None:
    """1-based rank of the first passage containing evidence, or None."""
    evidence = list(evidence)
    for rank, text in enumerate(passages, start=1):
        if contains_evidence(text, evidence):
            return rank
    return None


def _tokens(text: str) -> list[str]:
    return re.findall(r"\w+", normalize_for_match(text, fold=True))


def token_f1(prediction: str, reference: str) -> float:
    """SQuAD-style token F1 on normalised, accent-folded word tokens."""
    pred, ref = _tokens(prediction), _tokens(reference)
    if not pred or not ref:
        return float(pred == ref)
    common = sum((Counter(pred) & Counter(ref)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(pred), common / len(ref)
    return 2 * precision * recall / (precision + recall)


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100)."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), -(-len(ordered) * q // 100)))
    return ordered[int(rank) - 1]


def is_correct(item: EvalItem, result: dict[str, Any]) -> bool:
    """Answerable: did not abstain and satisfies every must_include group.
    Unanswerable: abstained and cited nothing."""
    if not item.answerable:
        return bool(result["abstained"]) and not result["citations"]
    return not result["abstained"] and satisfies(result["answer"], item.must_include)


def failure_reasons(item: EvalItem, result: dict[str, Any]) -> list[str]:
    """Why an item failed or is doubtful, in plain words (empty: nothing to report)."""
    reasons = []
    if result.get("error"):
        reasons.append(f"error: {result['error']}")
    if item.answerable:
        if result["abstained"]:
            reasons.append("abstained on an answerable question")
        else:
            for group in item.must_include:
                if not satisfies_group(result["answer"], group):
                    reasons.append("missing fact: " + json.dumps(list(group), ensure_ascii=False))
            if not result["citations"] and not result.get("error"):
                reasons.append("answered without citing a passage")
    else:
        if not result["abstained"]:
            reasons.append("answered an unanswerable question")
        elif result["citations"]:
            reasons.append("abstained but cited passages")
    if item.evidence:
        wrong = [c for c in result["citations"] if not contains_evidence(c["text"], item.evidence)]
        if wrong:
            reasons.append("cited passage without evidence: "
                           + ", ".join(f"[{c.get('number', '?')}]" for c in wrong))
        if item.answerable and result.get("retrieved") is not None \
                and first_hit_rank(result["retrieved"], item.evidence) is None:
            reasons.append(f"evidence not retrieved (top {len(result['retrieved'])})")
    return reasons


def _mean(values: list[float]) -> float | None:
    return round(sum(values) / len(values), 4) if values else None


def compute_metrics(items: list[EvalItem], results: list[dict[str, Any]]) -> dict[str, Any]:
    """The metrics, with exactly the keys of the shared format (null where no item qualifies)."""
    pairs = list(zip(items, results))
    answerable = [(i, r) for i, r in pairs if i.answerable]
    unanswerable = [(i, r) for i, r in pairs if not i.answerable]
    retrieval = [(i, r) for i, r in answerable if i.evidence]
    with_evidence = [(i, r) for i, r in pairs if i.evidence]
    ranks = [first_hit_rank(r["retrieved"], i.evidence) for i, r in retrieval]
    cited = [(i, c) for i, r in with_evidence for c in r["citations"]]
    latencies = [r["latency_ms"] for r in results]
    return {
        "n_items": len(items),
        "hit@1": _mean([float(r is not None and r <= 1) for r in ranks]),
        "hit@3": _mean([float(r is not None and r <= 3) for r in ranks]),
        "hit@5": _mean([float(r is not None and r <= 5) for r in ranks]),
        "mrr": _mean([1.0 / r if r else 0.0 for r in ranks]),
        "answer_accuracy": _mean([float(is_correct(i, r)) for i, r in answerable]),
        "citation_precision": _mean([float(contains_evidence(c["text"], i.evidence)) for i, c in cited]),
        "citation_recall": _mean([float(any(contains_evidence(c["text"], i.evidence) for c in r["citations"]))
                                  for i, r in with_evidence]),
        "abstention_rate": _mean([float(r["abstained"]) for _, r in unanswerable]),
        "false_abstention_rate": _mean([float(r["abstained"]) for _, r in answerable]),
        "token_f1": _mean([token_f1(r["answer"], i.reference_answer) for i, r in pairs
                           if i.reference_answer is not None]),
        "latency_ms_p50": round(median(latencies), 2) if latencies else None,
        "latency_ms_p95": round(percentile(latencies, 95), 2) if latencies else None,
        "latency_ms_max": round(max(latencies), 2) if latencies else None,
    }


def category_accuracy(items: list[EvalItem], results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per category (french / english / unanswerable / multi-turn): items and share correct
    (for unanswerable items, correct means abstained)."""
    out = {}
    for category in CATEGORIES:
        marks = [bool(r["correct"]) if "correct" in r else is_correct(i, r)
                 for i, r in zip(items, results) if i.category == category]
        out[category] = {"n": len(marks), "correct": sum(marks), "accuracy": _mean([float(m) for m in marks])}
    return out


# The question word that frames a French question, for the per-question-word table.
QUESTION_WORDS = ("qui", "quand", "combien", "où", "quel", "comment", "pourquoi", "que", "autre")
_WH_FORMS = {"qui": "qui", "quand": "quand", "combien": "combien", "où": "où", "ou": None, "quel": "quel",
             "quelle": "quel", "quels": "quel", "quelles": "quel", "lequel": "quel", "laquelle": "quel",
             "comment": "comment", "pourquoi": "pourquoi", "que": "que", "qu": "que", "quoi": "que"}


def question_word(question: str) -> str:
    """The first question word of ``question`` (« En quelle année… » -> quel), else « autre »."""
    import re

    for word in re.findall(r"\w+", question.casefold()):
        kind = _WH_FORMS.get(word)
        if kind:
            return kind
    return "autre"


def question_word_accuracy(items: list[EvalItem], results: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Per question word, on answerable items: how many, the share answered correctly, and the
    share whose first retrieved passage holds the evidence (hit@1)."""
    out = {}
    for word in QUESTION_WORDS:
        pairs = [(i, r) for i, r in zip(items, results) if i.answerable and question_word(i.question) == word]
        hits = [r.get("retrieval_rank") == 1 for i, r in pairs if i.evidence]
        out[word] = {"n": len(pairs), "accuracy": _mean([float(bool(r["correct"])) for _, r in pairs]),
                     "hit@1": _mean([float(h) for h in hits])}
    return out


def risk_coverage(items: list[EvalItem], results: list[dict[str, Any]]) -> dict[str, Any]:
    """How right the answers are when only the surest are kept: the answers given, ordered by
    ``confidence`` (highest first; abstentions last), the risk (share wrong, questions about absent
    documents counted wrong) at each coverage; AURC is its mean (lower is better). With graded
    answers (``certainty``), the coverage and precision of the sure ones. None without confidences."""
    scored = [(r.get("confidence"), bool(r["correct"]) and i.answerable and not r["abstained"], r)
              for i, r in zip(items, results)]
    if not scored or any(c is None for c, _, r in scored if not r["abstained"]):
        return {"aurc": None, "curve": [], "sure_coverage": None, "sure_precision": None}
    order = sorted(scored, key=lambda t: (t[2]["abstained"], -(t[0] or 0.0)))
    right, curve = 0, []
    for n, (_, ok, _) in enumerate(order, start=1):
        right += ok
        curve.append((n / len(order), 1 - right / n))
    answerable = sum(1 for i in items if i.answerable)
    sure = [(i, r) for i, r in zip(items, results) if r.get("certainty") == "sure"]
    step = max(1, len(curve) // 50)
    return {"aurc": round(sum(risk for _, risk in curve) / len(curve), 4),
            "curve": [[round(c, 4), round(r, 4)] for c, r in curve[::step]],
            "sure_coverage": round(sum(1 for i, _ in sure if i.answerable) / answerable, 4) if sure and answerable else None,
            "sure_precision": round(sum(1 for i, r in sure if i.answerable and r["correct"]) / len(sure), 4) if sure else None}
