"""The answer engine's contract: (question, standalone query, passages) -> an ``Answer``, or a
stream of text pieces then the ``Answer``.

Engines are registered by name (``engines``) and chosen by ``Settings.engine``; each is built by its
factory from the pipeline's shared context (``context.PipelineContext``), usually around the
sentence selector named by ``Settings.answer_scorer``. A new engine is one module with one
``@engines.register("name")`` (or an ``assistant.engines`` entry point): ``Assistant``, the CLI,
the web app and the evals reach it by name without any change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Callable, Iterator, Protocol, Sequence

from ..registry import Registry
from ..types import Answer, Passage

if TYPE_CHECKING:
    from ..context import PipelineContext


class AnswerEngine(Protocol):
    name: str
    # True: give it the whole candidate pool (``candidate_pool`` passages), not only ``top_k``.
    reads_pool: bool
    # Rewrites a follow-up as a standalone question (a language model), or None: the rules do.
    condense: Callable[[str, list[dict[str, str]]], str | None] | None

    def answer(self, question: str, query: str, passages: Sequence[Passage]) -> Answer:
        """The answer to ``question`` (``query``: its standalone form, what was searched) from
        ``passages``, best first."""

    def stream(self, question: str, query: str, passages: Sequence[Passage]) -> Iterator[str | Answer]:
        """Text pieces as they are written, then the final ``Answer``."""

    def describe(self) -> dict[str, Any]:
        """What an eval's configuration records about this engine and its selector."""


EngineFactory = Callable[["PipelineContext"], AnswerEngine]
engines: Registry[EngineFactory] = Registry(
    "engines", "Moteur", builtins=("assistant.engines.extractive", "assistant.engines.generative"))


def create_engine(context: "PipelineContext") -> AnswerEngine:
    return engines.get(context.settings.engine)(context)
