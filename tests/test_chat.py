"""Follow-up detection and history validation (pure functions, no model needed)."""

import pytest
from hypothesis import given, settings, strategies as st

from assistant.chat import FollowUpRewriter, validate_history

HISTORY = [{"role": "user", "content": "Quand l’opération Barkhane a-t-elle quitté le Mali ?"},
           {"role": "assistant", "content": "Elle s’est retirée le 15 août 2022 [1]."}]


@pytest.mark.parametrize("question", ["Et quand a-t-elle officiellement pris fin ?", "Qui l’a présidée ?",
                                      "Et dans quels camps ?", "Quels obstacles y ont été identifiés ?",
                                      "And what about its end?", "Pourquoi ?"])
def test_elliptic_questions_are_follow_ups(question):
    rewriter = FollowUpRewriter()
    assert rewriter.is_follow_up(question)
    query = rewriter.rewrite(question, HISTORY)
    assert "Barkhane" in query and query != question


@pytest.mark.parametrize("question", ["Que signifie le sigle IMRAP ?",
                                      "Combien de Maliens ont été consultés lors du dialogue national de 2013 ?",
                                      "Quand l’accord d’Alger a-t-il été signé ?"])
def test_standalone_questions_are_left_alone(question):
    assert FollowUpRewriter().rewrite(question, HISTORY) == question


def test_history_validation_names_the_entry():
    assert validate_history(None) == []
    blocks = [{"role": "user", "content": [{"type": "text", "text": "Bonjour"}]}]
    assert validate_history(blocks) == [{"role": "user", "content": "Bonjour"}]
    with pytest.raises(ValueError, match=r"history\[1\].*role"):
        validate_history([HISTORY[0], {"role": "system", "content": "x"}])
    with pytest.raises(ValueError, match=r"history\[0\].*content"):
        validate_history([{"role": "user", "content": 42}])
    with pytest.raises(ValueError, match=r"history\[0\]"):
        validate_history(["pas un message"])
    with pytest.raises(ValueError, match="liste"):
        validate_history("texte")


def test_a_condensed_question_must_keep_the_users_words():
    """A model's rewrite that changes the user's words is not trusted: the rules complete the question."""
    history = [{"role": "user", "content": "Qu’est-ce qui appuie la mise en œuvre de l’accord d’Alger ?"},
               {"role": "assistant", "content": "Les efforts d’appui de la médiation internationale [1]."}]
    question = "Qui l’a présidée ?"
    wrong_referent = FollowUpRewriter(condense=lambda q, h: "Qui a présidé l’accord d’Alger ?")
    assert wrong_referent.rewrite(question, history).startswith("Qui l’a présidée ?")
    faithful = FollowUpRewriter(condense=lambda q, h: "La médiation internationale, qui l’a présidée ?")
    assert faithful.rewrite(question, history) == "La médiation internationale, qui l’a présidée ?"


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=40),
                     lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children,
                                                                                      max_size=4), max_leaves=20)
_TURN = st.fixed_dictionaries({"role": st.sampled_from(["user", "assistant", "system", "", 3]),
                               "content": st.one_of(st.text(max_size=200), _JSON)})


@settings(max_examples=300, deadline=None)
@given(st.one_of(_JSON, st.lists(st.one_of(_TURN, _JSON), max_size=6)), st.text(max_size=200))
def test_any_history_is_valid_or_a_clear_value_error(history, question):
    try:
        turns = validate_history(history)
    except ValueError as error:
        assert str(error).startswith("history")
        return
    assert all(set(t) == {"role", "content"} and isinstance(t["content"], str) for t in turns)
    FollowUpRewriter().rewrite(question or "Et ensuite ?", turns)  # never raises on valid turns


def test_greetings_thanks_and_help_are_answered_without_searching(assistant) -> None:
    from assistant.chat import small_talk

    assert small_talk("Bonjour !") == ("greeting", "fr") and small_talk("Hello") == ("greeting", "en")
    assert small_talk("Merci beaucoup 🙏") == ("thanks", "fr") and small_talk("aide") == ("help", "fr")
    assert small_talk("Que peux-tu faire ?") == ("help", "fr") and small_talk("What can you do?") == ("help", "en")
    assert small_talk("Merci, et quel est le budget ?") is None and small_talk("Qui finance le programme ?") is None
    for message in ("bonjour", "Merci !", "aide", "Hello"):
        answer = assistant.ask(message)
        assert answer.conversational and not answer.abstained and answer.citations == ()
        assert answer.retrieved == () and answer.query == ""
    help_text = assistant.ask("aide").text
    assert all(f"« {q} »" in help_text for q in assistant.discover().questions[:2])  # what can be asked
    assert "I answer only from" in assistant.ask("Hello").text


def test_a_greeting_before_a_question_is_not_part_of_it(assistant) -> None:
    question = "Quand l'opération Barkhane s'est-elle retirée du Mali ?"
    greeted = assistant.ask(f"Bonjour, {question}")
    assert greeted.text == assistant.ask(question).text and not greeted.conversational


def test_english_question_is_told_the_quotes_are_french(assistant) -> None:
    answer = assistant.ask("When did operation Barkhane leave Mali?")
    if not answer.abstained:
        assert any("language of the documents (French)" in n for n in answer.notices)
    assert not any("French" in n for n in assistant.ask("Quand l'opération Barkhane s'est-elle retirée du Mali ?").notices)
