"""The passage reranker: fitted on data, it reorders the retrieved pool that every engine reads.
Real model, real index of the programme page."""

from __future__ import annotations

import json
import logging
from pathlib import Path

from assistant.calibration import Calibration
from assistant.evidence import PASSAGE_FEATURES
from assistant.reranking import Reranker
from assistant.text import normalize_for_match

from .conftest import DEV_SET


def _evidence_items():
    items = [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines()
             if line.strip() and not line.startswith("//")]
    return [i for i in items if i.get("answerable", True) and i.get("evidence") and not i.get("history")]


def _holds(passage, item) -> bool:
    return any(normalize_for_match(e) in normalize_for_match(passage.text) for e in item["evidence"])


def test_shipped_reranker_puts_the_evidence_first_more_often_than_retrieval(assistant):
    """On the dev set (which the shipped model saw: a check of the wiring, not a held-out number)."""
    assert assistant.pipeline.reranker is not None
    items = _evidence_items()
    reranked = sum(_holds(assistant.search(i["question"], k=1)[0], i) for i in items)
    retrieved = sum(_holds(assistant.search(i["question"], k=1, mode="hybrid")[0], i) for i in items)
    assert reranked >= retrieved and reranked / len(items) >= 0.9, (reranked, retrieved, len(items))


def test_rerank_keeps_the_pool_and_orders_it_by_probability(assistant):
    pool = assistant.retriever.retrieve("Quand l’opération Barkhane s’est-elle retirée du Mali ?", 20)
    reranked = assistant.pipeline.reranker.rerank("Quand l’opération Barkhane s’est-elle retirée du Mali ?",
                                                  "Quand l’opération Barkhane s’est-elle retirée du Mali ?", pool)
    assert sorted(p.chunk_id for p in reranked) == sorted(p.chunk_id for p in pool)
    scores = [p.score for p in reranked]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert "15 août 2022" in reranked[0].text


def test_answers_read_the_reranked_passages(assistant):
    question = "Combien de Maliens ont été consultés ?"
    answer = assistant.ask(question)
    assert [p.chunk_id for p in answer.retrieved] == [p.chunk_id for p in assistant.search(question)]


def test_a_calibration_without_reranker_keeps_the_retrieval_order(assistant, tmp_path, caplog):
    data = json.loads(Path(Calibration.load().path).read_text(encoding="utf-8"))
    data.pop("reranker")
    older = tmp_path / "older.json"
    older.write_text(json.dumps(data), encoding="utf-8")
    with caplog.at_level(logging.WARNING, logger="assistant"):
        variant = assistant.variant(calibration=str(older))
    assert variant.pipeline.reranker is None and "reclassement" in caplog.text
    question = "Quels sont les partenaires du programme ?"
    assert [p.chunk_id for p in variant.search(question)] == \
        [p.chunk_id for p in assistant.search(question, mode="hybrid")]


def test_a_reranker_fitted_on_other_features_is_refused(assistant):
    import pytest

    from assistant.errors import AssistantError

    model = Calibration.load().reranker
    other = type(model)(model.features[:-1], model.mean[:-1], model.scale[:-1], model.coefficients[:-1],
                        model.intercept)
    assert model.features == PASSAGE_FEATURES
    with pytest.raises(AssistantError, match="calibrate"):
        Reranker(assistant.pipeline.reranker.scorer, other)


def test_the_engine_reuses_the_rerankers_analysis_exactly(assistant):
    """The pool is analysed once per question: read again in the reranked order, the candidates and
    every feature are what a fresh analysis of that order gives."""
    import numpy as np

    from assistant.evidence import EvidenceScorer

    scorer = assistant.pipeline.reranker.scorer
    for item in _evidence_items()[:15]:
        question = item["question"]
        pool = assistant.retriever.retrieve(question, 20)
        reranked = assistant.pipeline.reranker.rerank(question, question, pool)
        units, owners, matrix, _ = scorer.features(question, question, reranked)
        fresh = EvidenceScorer(assistant.index, assistant.embedder, scorer.calibration)  # nothing analysed yet
        fresh_units, fresh_owners, fresh_matrix, _ = fresh.features(question, question, reranked)
        assert [[s.id for s in u] for u in units] == [[s.id for s in u] for u in fresh_units]
        assert [o.chunk_id for o in owners] == [o.chunk_id for o in fresh_owners]
        assert np.array_equal(matrix, fresh_matrix)
