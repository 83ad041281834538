"""Cited extractive answers on the real model and index: offsets, markers, lists, abstention,
follow-ups, other languages and bad input."""

import json
import re
import warnings

import pytest
from hypothesis import given, strategies as st

from assistant import Answer, Assistant
from assistant.engines.compose import ABSTENTION

from .conftest import DEV_SET


def _check_citations(answer: Answer, documents) -> None:
    texts = {d.source: d.text for d in documents}
    markers = [int(n) for n in re.findall(r"\[(\d+)\]", answer.text)]
    assert markers, "an answer carries markers"
    numbers = [c.number for c in answer.citations]
    assert numbers == list(range(1, len(numbers) + 1)), "numbered in order of first use"
    assert sorted(set(markers)) == numbers, "every marker resolves to exactly one citation"
    assert list(dict.fromkeys(markers)) == numbers
    for citation in answer.citations:
        assert texts[citation.source][citation.start:citation.end] == citation.text
        assert citation.highlights
        for start, end in citation.highlights:
            assert citation.start <= start < end <= citation.end
            quote = texts[citation.source][start:end]
            assert quote in citation.text
            # the cited sentence is in the answer (a leading connector may be trimmed)
            assert quote[-40:] in answer.text


def test_answer_with_verbatim_citations(assistant, documents):
    answer = assistant.ask("Quand l’opération Barkhane s’est-elle retirée du Mali ?")
    assert not answer.abstained and "15 août 2022" in answer.text
    _check_citations(answer, documents)
    data = answer.to_dict()
    assert data["citations"][0]["text"] == answer.citations[0].text
    assert set(data) >= {"text", "citations", "abstained", "query", "timings"}
    assert answer.timings["total_ms"] > 0 and "retrieval_ms" in answer.timings


def test_at_most_three_sentences(assistant):
    answer = assistant.ask("Que s'est-il passé au Mali après la rupture institutionnelle ?")
    assert sum(len(c.highlights) for c in answer.citations) <= 3


def test_enumeration_is_kept_whole(assistant, documents):
    answer = assistant.ask("Quels sont les quatre obstacles à la paix identifiés au Mali ?")
    for fact in ("érosion des valeurs sociétales", "emploi des jeunes", "gouvernance", "insécurité chronique"):
        assert fact in answer.text
    _check_citations(answer, documents)


def test_a_list_question_gets_the_whole_list(assistant, documents):
    answer = assistant.ask("Quelles sont les initiatives en cours du programme ?")
    assert answer.text.count("\n- ") >= 4, answer.text
    _check_citations(answer, documents)


@pytest.mark.parametrize("question", [
    "Quel est le budget du programme ?",
    "Comment s'appelle le gestionnaire du programme ?",
    "Combien de soldats comptait l'opération Barkhane ?",
    "Quelle est l'adresse e-mail du programme ?",
])
def test_absent_facts_are_not_invented(assistant, question):
    answer = assistant.ask(question)
    assert answer.abstained and answer.citations == ()
    assert answer.text == ABSTENTION["fr"]


@pytest.mark.parametrize("question", ["Quelle est la recette du tiramisu ?", "Explique-moi la photosynthèse.",
                                      "Comment réparer une fuite d’eau ?", "What is the capital of France?"])
def test_off_topic_questions_get_no_answer(assistant, question):
    # Dense scores are never low on this corpus: a best sentence always exists and must not be served.
    answer = assistant.ask(question)
    assert answer.abstained and not answer.citations


def test_english_abstention_is_in_english(assistant):
    answer = assistant.ask("What is the annual budget of the programme?")
    assert answer.abstained and answer.text == ABSTENTION["en"] and not answer.citations


def test_english_question_answers_with_french_evidence(assistant, documents):
    answer = assistant.ask("When was the official end of Operation Barkhane announced?")
    assert not answer.abstained and "9 novembre 2022" in answer.text
    _check_citations(answer, documents)


def test_follow_up_is_resolved_from_history(assistant):
    history = [{"role": "user", "content": "Quand l’opération Barkhane a-t-elle quitté le Mali ?"},
               {"role": "assistant", "content": "Le 15 août 2022 [1]."}]
    answer = assistant.ask("Et quand a-t-elle officiellement pris fin ?", history=history)
    assert "Barkhane" in answer.query and answer.query != answer.question
    assert "9 novembre 2022" in answer.text


def test_standalone_question_is_not_polluted_by_history(assistant):
    history = [{"role": "user", "content": "Quelle taskforce européenne a quitté le Mali avec Barkhane ?"},
               {"role": "assistant", "content": "La taskforce Takuba [1]."}]
    question = "Que signifie le sigle IMRAP ?"
    with_history = assistant.ask(question, history=history)
    alone = assistant.ask(question)
    assert with_history.query == question
    assert with_history.text == alone.text and "Institut Malien de Recherche-Action pour la Paix" in alone.text


def test_stream_yields_text_then_the_answer(assistant):
    pieces = list(assistant.stream("Que signifie le sigle CNT ?"))
    assert isinstance(pieces[-1], Answer) and all(isinstance(p, str) for p in pieces[:-1])
    assert "".join(pieces[:-1]) == pieces[-1].text


def test_empty_question_is_a_value_error(assistant):
    for question in ("", "   \n\t"):
        with pytest.raises(ValueError, match="vide"):
            assistant.ask(question)


def test_huge_question_is_cut_with_a_warning(assistant):
    question = "Quand l’accord d’Alger a-t-il été signé ? " + "x" * 100_000
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        answer = assistant.ask(question)
    assert any("caractères" in str(w.message) for w in caught)
    assert answer.notices and len(answer.question) == assistant.settings.max_question_chars


def test_html_and_markdown_are_plain_text(assistant):
    answer = assistant.ask("<img src=x onerror=alert(1)> **Qui** préside la `médiation` ?")
    assert isinstance(answer.text, str)
    assert "<img" not in answer.text
    assert answer.question.startswith("<img src=x onerror=alert(1)>")


def test_malformed_history_names_the_entry(assistant):
    with pytest.raises(ValueError, match=r"history\[1\]"):
        assistant.ask("Et ensuite ?", history=[{"role": "user", "content": "Bonjour"}, {"role": "bot"}])


def test_unknown_engine_is_refused(settings):
    with pytest.raises(ValueError, match="Moteur inconnu"):
        Assistant.load(settings=settings, engine="magique")


def test_lone_surrogates_are_refused_clearly(assistant):
    with pytest.raises(ValueError, match="caractère invalide"):
        assistant.ask("Quand \ud800 ?")
    with pytest.raises(ValueError, match=r"history\[0\].*caractère invalide"):
        assistant.ask("Et ensuite ?", history=[{"role": "user", "content": "Barkhane \udce9"}])


@pytest.mark.parametrize("k", [0, -1, 2.5, True])
def test_k_must_be_a_positive_integer(assistant, k):
    with pytest.raises(ValueError, match="k doit être un entier positif"):
        assistant.search("camps de réfugiés", k=k)
    with pytest.raises(ValueError, match="k doit être un entier positif"):
        assistant.ask("camps de réfugiés", k=k)


def test_long_history_is_bounded(assistant):
    """Only the recent turns, each capped, feed the follow-up: a huge history changes nothing else."""
    recent = [{"role": "user", "content": "Quand l’opération Barkhane a-t-elle quitté le Mali ?"},
              {"role": "assistant", "content": "Le 15 août 2022 [1]."}]
    noise = [{"role": "user" if i % 2 == 0 else "assistant", "content": "bavardage " * 5000} for i in range(400)]
    question = "Et quand a-t-elle officiellement pris fin ?"
    long, short = assistant.ask(question, history=noise + recent), assistant.ask(question, history=recent)
    limit = assistant.settings.max_question_chars
    assert len(long.query) <= 2 * limit and long.query == short.query and long.text == short.text
    assert "9 novembre 2022" in long.text
    # A history of follow-ups only: the rewriter walks back through every one of them.
    chain = [{"role": "user" if i % 2 == 0 else "assistant", "content": "Et ensuite " * 4000} for i in range(400)]
    answer = assistant.ask(question, history=chain)
    assert len(answer.query) <= 2 * limit and answer.query.startswith("Quand a-t-elle officiellement pris fin")


@given(st.frozensets(st.text(alphabet="abcdeéfghi", min_size=1, max_size=8), max_size=60),
       st.text(alphabet="abcdeéfghi", min_size=1, max_size=9))
def test_vocabulary_lookup_matches_the_prefix_rule(stems, stem):
    """The corpus vocabulary answers in time independent of its size, with the same rule as a scan."""
    from assistant.selectors.rules import _Vocabulary, _positions

    assert _Vocabulary(stems).knows(stem) == bool(_positions([stem], stems))


def test_max_answer_chars_keeps_neighbouring_sentences_within_the_budget(assistant):
    """With ``max_answer_chars`` the rules add a neighbouring sentence only while the quoted text
    stays within it (the first sentence, or enumeration, is quoted whatever its length)."""
    questions = [json.loads(line)["question"] for line in DEV_SET.read_text(encoding="utf-8").splitlines()
                 if line.strip()][:40]
    capped, free = assistant.variant(max_answer_chars=300), assistant.variant(max_answer_chars=0)
    longer = 0
    for question in questions:
        short, long = capped.ask(question), free.ask(question)
        quoted = [q for c in short.citations for q in c.quotes]
        one_unit = len(quoted) <= 1 or short.text.startswith("- ")  # a sentence, or an enumeration
        assert one_unit or sum(len(q) for q in quoted) <= 300
        longer += sum(len(q) for c in long.citations for q in c.quotes) > 300
        if not long.abstained:  # the same first sentence, fewer neighbours
            assert not short.abstained and set(quoted) <= {q for c in long.citations for q in c.quotes}
    assert longer, "without the budget some answers quote more than 300 characters"
