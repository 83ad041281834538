"""The extractive engine (the default): the selector's sentences, quoted verbatim with citations."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING, Any, Iterator, Sequence

from ..selectors.base import SentenceSelector, create_selector
from ..types import Answer, Passage
from .base import engines
from .compose import quoted_answer

if TYPE_CHECKING:
    from ..context import PipelineContext


class ExtractiveEngine:
    name = "extractive"
    condense = None

    def __init__(self, selector: SentenceSelector) -> None:
        self.selector = selector
        self.reads_pool = selector.reads_pool

    def describe(self) -> dict[str, Any]:
        return {"engine": self.name, "selector": self.selector.describe()}

    def answer(self, question: str, query: str, passages: Sequence[Passage]) -> Answer:
        started = time.perf_counter()
        return quoted_answer(self.selector.select(question, query, passages), self.name, started)

    def stream(self, question: str, query: str, passages: Sequence[Passage]) -> Iterator[str | Answer]:
        answer = self.answer(question, query, passages)
        yield answer.text
        yield answer


@engines.register("extractive")
def extractive_engine(context: "PipelineContext") -> ExtractiveEngine:
    return ExtractiveEngine(create_selector(context.settings.answer_scorer, context))
