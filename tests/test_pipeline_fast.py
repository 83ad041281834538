"""Engines, selectors, retrieval and the chat's follow-ups on an in-memory store with a small
deterministic embedder (``tests/fakes.py``): no model is loaded, each test takes milliseconds.
The same behaviours are tested on the real model and index in the slow tests."""

from __future__ import annotations

import pytest

from assistant import Assistant
from assistant.engines.compose import ABSTENTION
from assistant.retrieval import Retriever

from .fakes import HashingEmbedder, memory_index, memory_settings

NOTE = """# Note de l'atelier de Mopti

## Atelier

L'atelier de dialogue s'est tenu à Mopti le 12 mars 2024. La session a été animée par Aminata Traoré. Trente-deux participants y ont pris part.

## Radio

La radio de Gao diffuse l'émission Paroles de paix chaque mardi soir. Les auditeurs appellent pendant une heure.

## Partenaires

Les partenaires du programme sont les suivants :
- l'IMRAP
- Interpeace
- les autorités régionales
"""
BUDGET = """# Budget du programme

## Financement

Le budget annuel du programme atteint 240 millions de francs CFA. Il est financé principalement par la coopération suisse.
"""


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    folder = tmp_path_factory.mktemp("library")
    embedder = HashingEmbedder()
    index = memory_index(folder, {"note.md": NOTE, "budget.md": BUDGET}, embedder)
    return folder, embedder, index


def _assistant(library, **overrides) -> Assistant:
    folder, embedder, index = library
    return Assistant.from_index(index, embedder, memory_settings(folder, **overrides))


def test_retrieval_modes_over_the_memory_store(library):
    _, embedder, index = library
    retriever = Retriever(index, embedder)
    lexical = retriever.retrieve("coopération suisse financement", 2, mode="bm25")
    assert lexical[0].document == "budget" and lexical[0].bm25_score > 0
    dense = retriever.retrieve("coopération suisse financement", 2, mode="dense")
    assert dense[0].document == "budget" and dense[0].dense_score > dense[-1].dense_score
    hybrid = retriever.retrieve("radio de Gao Paroles de paix", 3)
    assert "Gao" in hybrid[0].text and hybrid[0].score >= hybrid[-1].score
    for passage in hybrid:  # offsets into the source file, exactly
        assert index.chunk(passage.chunk_id).text == passage.text


def test_rules_quote_the_sentence_holding_the_asked_date(library):
    answer = _assistant(library, answer_scorer="rules", abstain_threshold=0.0).ask("Quand l'atelier de Mopti s'est-il tenu ?")
    assert not answer.abstained and "12 mars 2024" in answer.text
    citation = answer.citations[0]
    assert citation.document == "note" and any("12 mars 2024" in q for q in citation.quotes)
    assert answer.text.endswith("[1]") and answer.confidence is None


def test_rules_abstain_when_the_score_threshold_is_not_reached(library):
    answer = _assistant(library, answer_scorer="rules", abstain_threshold=0.99).ask("Quand l'atelier de Mopti s'est-il tenu ?")
    assert answer.abstained and answer.text == ABSTENTION["fr"] and not answer.citations


def test_an_off_topic_question_abstains_in_its_language(library):
    answer = _assistant(library, answer_scorer="rules", abstain_threshold=0.0).ask("What is the capital of Australia?")
    assert answer.abstained and answer.text == ABSTENTION["en"]


def test_a_plural_question_may_be_answered_by_the_whole_list(library):
    answer = _assistant(library, answer_scorer="rules", abstain_threshold=0.0).ask(
        "Quels sont les partenaires du programme ?")
    assert not answer.abstained and "IMRAP" in answer.text and "Interpeace" in answer.text


def test_gated_and_calibrated_selectors_run_on_the_memory_store(library):
    gated = _assistant(library, answer_scorer="gated", abstain_threshold=0.0).ask("Quand l'atelier de Mopti s'est-il tenu ?")
    assert gated.confidence is not None or gated.abstained  # the gate read the pool (or the rules abstained)
    calibrated = _assistant(library, answer_scorer="calibrated").ask("Quand l'atelier de Mopti s'est-il tenu ?")
    assert calibrated.confidence is not None and 0.0 <= calibrated.confidence <= 1.0
    assert calibrated.abstained or calibrated.citations


def test_a_follow_up_is_searched_with_the_earlier_turn(library):
    assistant = _assistant(library, answer_scorer="rules", abstain_threshold=0.0)
    first = "Quand l'atelier de Mopti s'est-il tenu ?"
    history = [{"role": "user", "content": first}, {"role": "assistant", "content": assistant.ask(first).text}]
    follow = assistant.ask("Et qui l'a animé ?", history)
    assert "Mopti" in follow.query or "atelier" in follow.query
    assert "Mopti" not in assistant.ask("Et qui l'a animé ?").query


def test_answers_are_frozen_and_serialisable(library):
    import dataclasses
    import json

    answer = _assistant(library, answer_scorer="rules", abstain_threshold=0.0).ask("Quand l'atelier de Mopti s'est-il tenu ?")
    with pytest.raises(dataclasses.FrozenInstanceError):
        answer.text = "autre"  # type: ignore[misc]
    data = json.loads(json.dumps(answer.to_dict()))
    assert data["citations"][0]["text"] == answer.citations[0].passage.text
    assert data["citations"][0]["quotes"] == answer.citations[0].quotes


def test_describe_names_the_engine_and_selector(library):
    described = _assistant(library, answer_scorer="rules", abstain_threshold=0.5).describe()
    assert described["engine"] == "extractive" and described["selector"]["name"] == "rules"
    assert described["selector"]["abstain_threshold"] == 0.5


def test_a_tiny_engine_registered_by_name_answers_through_the_assistant(library):
    from .test_plugins import ShoutingEngine
    from assistant.engines import engines

    engines.register("shout-fast")(lambda context: ShoutingEngine(context.index))
    try:
        answer = _assistant(library, engine="shout-fast").ask("Où se tient l'atelier ?")
    finally:
        engines.unregister("shout-fast")
    assert answer.engine == "shout" and answer.citations
    assert answer.text == answer.citations[0].quotes[0].upper() + " [1]"
