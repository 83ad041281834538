"""A new answer engine is one registration: registered by name here, it answers through
``Assistant`` and the web app without any change to ``api.py`` or ``ui/``."""

from __future__ import annotations

from typing import Any, Iterator, Sequence

import pytest

from assistant.engines import engines
from assistant.engines.compose import compose
from assistant.selectors import Selection, Unit, selectors
from assistant.types import Answer, Passage

from .conftest import free_port


class ShoutingEngine:
    """A tiny engine: the first sentence of the first passage, in capitals, cited."""

    name = "shout"
    reads_pool = False
    condense = None

    def __init__(self, index: Any) -> None:
        self.index = index

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name}

    def answer(self, question: str, query: str, passages: Sequence[Passage]) -> Answer:
        sentence = self.index.chunk(passages[0].chunk_id).sentences[0]
        selection = Selection(question, query, "fr", (Unit((sentence,), 1.0, passages[0]),), tuple(passages))
        return compose(selection, [(sentence.text.upper(), list(selection.units))], self.name, 0.0)

    def stream(self, question: str, query: str, passages: Sequence[Passage]) -> Iterator[str | Answer]:
        answer = self.answer(question, query, passages)
        yield answer.text
        yield answer


@pytest.fixture()
def shouting():
    engines.register("shout")(lambda context: ShoutingEngine(context.index))
    yield "shout"
    engines.unregister("shout")


@pytest.mark.slow
def test_a_registered_engine_answers_through_the_assistant_and_the_web_app(assistant, settings, shouting):
    from gradio_client import Client

    from ui.app import build_app, launch

    loud = assistant.variant(engine=shouting)
    answer = loud.ask("Quand la MINUSMA a-t-elle pris fin ?")
    first = answer.citations[0]
    assert answer.engine == "shout" and answer.text == first.quotes[0].upper() + " [1]"
    assert loud.describe()["engine"] == "shout"

    demo = build_app(loud, settings)
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True, corpus_dir=settings.corpus_dir)
    try:
        served = Client(url, verbose=False).predict("Quand la MINUSMA a-t-elle pris fin ?", [], api_name="/ask")
    finally:
        demo.close()
    assert served["engine"] == "shout" and served["text"] == answer.text


def test_unknown_names_are_refused_in_french_with_the_known_ones():
    with pytest.raises(ValueError, match="Moteur inconnu « nulle part » : choisissez parmi extractive"):
        engines.get("nulle part")
    with pytest.raises(ValueError, match="answer_scorer inconnu « hasard »"):
        selectors.get("hasard")
    assert {"extractive", "llm", "openai"} <= set(engines.names())
    assert {"rules", "calibrated", "gated"} <= set(selectors.names())
