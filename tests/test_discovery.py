"""Découvrir: acronyms, dates and suggested questions read from whatever corpus is indexed."""

from __future__ import annotations

from assistant.discovery import Explorer, candidate_questions, dates_in, expansion_of


def test_acronym_long_forms_by_their_letters() -> None:
    assert expansion_of("ONG", "Elle travaille avec une organisation non gouvernementale") == \
        "organisation non gouvernementale"
    assert expansion_of("UA", "Le sommet de l'Union africaine") == "Union africaine"
    # Letters inside words count, the first one starts a word; the shortest run wins.
    assert expansion_of("MINUSMA", "le mandat de la Mission des Nations Unies au Mali") == \
        "Mission des Nations Unies au Mali"
    assert expansion_of("XYZ", "rien à voir ici") is None
    assert expansion_of("DSM", "une direction de la sécurité militaire") is None  # not « de la sécurité… »


def test_dates_in_french_and_english() -> None:
    found = dates_in("Signé le 20 juin 2015, révisé en mars 2016, depuis 2012 ; 1er janvier 1960 ; "
                     "2000 personnes ; August 15, 2022.")
    assert [(y, m, d) for _, y, m, d in found] == [(2015, 6, 20), (2016, 3, 0), (2012, 0, 0), (1960, 1, 1),
                                                   (2022, 8, 15)]


def test_explorer_on_the_real_index(assistant) -> None:
    found = Explorer().explore(assistant.index.chunks)
    entries = {g.acronym: g for g in found.glossary}
    assert entries["CNT"].expansion == "Conseil national de transition"
    for entry in found.glossary:  # each cites the sentence that defines it
        assert f"({entry.acronym})" in " ".join(entry.citation.quotes) and entry.expansion in entry.citation.text
    keys = [(e.year, e.month, e.day) for e in found.timeline]
    assert keys == sorted(keys) and any(e.year == 2015 for e in found.timeline)
    for event in found.timeline:
        (quote,) = event.citation.quotes
        assert event.date in quote
    assert [d.title for d in found.documents] == list(dict.fromkeys(c.title for c in assistant.index.chunks))
    assert found.to_dict()["glossary"][0]["citation"]["quotes"]


def test_suggested_questions_are_answered_with_a_citation(assistant) -> None:
    found = assistant.discover()
    assert found is assistant.discover()  # computed once per index
    assert 3 <= len(found.questions) <= assistant.settings.suggested_questions
    assert set(found.questions) <= set(candidate_questions(found))
    for question in found.questions:
        answer = assistant.ask(question)
        assert not answer.abstained and answer.citations and "[1]" in answer.text
