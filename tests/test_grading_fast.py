"""Graded answers and follow-ups without the model: the unsure form's composition, « Et ensuite ? »
in the document, the per-question-word table and the risk-coverage numbers of the evals."""

from __future__ import annotations

import pytest

from assistant.chat import continuation_of, is_continuation
from assistant.engines.compose import quoted_answer
from assistant.language import pack
from assistant.selectors import Selection, Unit
from assistant.types import Passage, Sentence
from evals.dataset import EvalItem
from evals.metrics import question_word, question_word_accuracy, risk_coverage

SOURCE = "L'atelier s'est tenu à Mopti le 12 mars. La session a été animée par Aminata Traoré. Trente-deux participants."


def _sentences() -> list[Sentence]:
    out, start = [], 0
    for n, text in enumerate(["L'atelier s'est tenu à Mopti le 12 mars.", "La session a été animée par Aminata Traoré.",
                              "Trente-deux participants."]):
        start = SOURCE.index(text)
        out.append(Sentence(f"s{n}", "c0", "note", "Atelier", 0, start, start + len(text), text, False))
    return out


PASSAGE = Passage("c0", SOURCE, "note", "Note", "note.md", "Atelier", 0, len(SOURCE), 1.0, 0.9, 3.0)


@pytest.mark.parametrize("question", ["Et ensuite ?", "et après", "Et puis ?", "What next?", "La suite ?"])
def test_continuations_are_recognised(question):
    assert is_continuation(question)


@pytest.mark.parametrize("question", ["Et qui l'a animée ?", "Ensuite, où est-elle allée ?", "Quand ?"])
def test_other_follow_ups_are_not_continuations(question):
    assert not is_continuation(question)


def test_the_continuation_is_the_sentence_after_the_last_one_quoted():
    sentences = _sentences()
    assert continuation_of("L'atelier s'est tenu à Mopti le 12 mars. [1]", sentences) == sentences[1]
    both = "L'atelier s'est tenu à Mopti le 12 mars. La session a été animée par Aminata Traoré. [1]"
    assert continuation_of(both, sentences) == sentences[2]
    assert continuation_of("Trente-deux participants. [1]", sentences) is None  # too short to be found, or last
    assert continuation_of("Rien de cité.", sentences) is None


def test_an_unsure_answer_quotes_its_passage_and_marks_the_likely_sentence():
    sentences = _sentences()
    units = (Unit((sentences[1],), 0.6, PASSAGE), Unit((sentences[0],), 0.3, PASSAGE))
    likely = sentences[1].text
    selection = Selection("Qui a animé ?", "Qui a animé ?", "fr", units, (PASSAGE,), confidence=0.4, certainty="unsure",
                          mark=lambda text: ((text.index(likely), text.index(likely) + len(likely)),))
    answer = quoted_answer(selection, "extractive", 0.0)
    assert answer.text.startswith(pack("fr").strings["unsure"])
    assert answer.text.index(sentences[0].text) < answer.text.index(likely)  # reading order
    assert answer.markdown.count("**") == 2 and f"**{likely}**" in answer.markdown
    assert answer.certainty == "unsure" and answer.confidence == 0.4 and answer.to_dict()["certainty"] == "unsure"
    assert [c.number for c in answer.citations] == [1] and answer.text.endswith("[1]")


def test_an_abstention_keeps_its_grade():
    selection = Selection("Qui ?", "Qui ?", "en", (), (PASSAGE,), confidence=0.05, certainty="abstained")
    answer = quoted_answer(selection, "extractive", 0.0)
    assert answer.abstained and answer.certainty == "abstained" and answer.text == pack("en").strings["abstention"]


@pytest.mark.parametrize("question, word", [("Qui a fondé Rome ?", "qui"), ("En quelle année est-il mort ?", "quel"),
                                            ("Combien d'habitants ?", "combien"), ("Où est né Victor Hugo ?", "où"),
                                            ("Pourquoi ?", "pourquoi"), ("Décris la ville.", "autre")])
def test_question_words(question, word):
    assert question_word(question) == word


def _item(n: int, answerable: bool = True) -> EvalItem:
    return EvalItem(id=f"q{n}", question=f"Qui est {n} ?", answerable=answerable, must_include=(("x",),) if answerable else (),
                    evidence=("x",) if answerable else (), lang="fr")


def test_risk_coverage_puts_the_surest_first_and_counts_absent_questions_as_wrong():
    items = [_item(0), _item(1), _item(2), _item(3, answerable=False)]
    results = [{"correct": True, "abstained": False, "confidence": 0.9, "certainty": "sure"},
               {"correct": False, "abstained": False, "confidence": 0.5, "certainty": "unsure"},
               {"correct": True, "abstained": False, "confidence": 0.7, "certainty": "unsure"},
               {"correct": False, "abstained": False, "confidence": 0.8, "certainty": "sure"}]
    numbers = risk_coverage(items, results)
    # surest first: right, wrong (absent), right, wrong -> risks 0, 1/2, 1/3, 1/2
    assert numbers["aurc"] == round((0 + 0.5 + 1 / 3 + 0.5) / 4, 4)
    assert numbers["sure_coverage"] == round(1 / 3, 4) and numbers["sure_precision"] == 0.5
    assert risk_coverage(items, [{**r, "confidence": None} for r in results])["aurc"] is None


def test_question_word_table_counts_answerable_items():
    items = [_item(0), _item(1), _item(2, answerable=False)]
    results = [{"correct": True, "retrieval_rank": 1}, {"correct": False, "retrieval_rank": 3},
               {"correct": True, "retrieval_rank": None}]
    table = question_word_accuracy(items, results)
    assert table["qui"] == {"n": 2, "accuracy": 0.5, "hit@1": 0.5}
