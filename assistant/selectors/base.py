"""The sentence selector's contract: which sentences (or enumeration) of the retrieved passages
answer the question, with a confidence, or none (the engine then abstains).

A selector reads; it does not write the answer. The engines (``assistant.engines``) compose what
it selected into an ``Answer`` with citations. Selectors are registered by name (``selectors``) and
chosen by ``Settings.answer_scorer``; a new one is one module with one ``@selectors.register``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, Protocol, Sequence

from ..registry import Registry
from ..types import Passage, Sentence

if TYPE_CHECKING:
    from ..context import PipelineContext


@dataclass(frozen=True)
class Unit:
    """What an answer quotes: one sentence, or a whole enumeration, scored against the question."""

    sentences: tuple[Sentence, ...]
    score: float
    passage: Passage

    @property
    def is_list(self) -> bool:
        return len(self.sentences) > 1


Spans = tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class Selection:
    """A selector's choice for one question."""

    question: str
    query: str
    language: str  # the question's language: the answer's
    units: tuple[Unit, ...]  # what to quote, the best first; empty: no answer (abstain)
    passages: tuple[Passage, ...]  # the retrieved passages as the answer lists them
    confidence: float | None = None  # calibrated probability (selectors fitted on data)
    # Where, in the composed answer's text, the fact the question asks for stands (a date, a name).
    mark: Callable[[str], Spans] | None = None
    # Selectors that grade their answers: "sure", "unsure" (the closest passage is shown, its likely
    # sentence marked) or "abstained"; None: the selector does not grade them.
    certainty: str | None = None

    @property
    def abstained(self) -> bool:
        return not self.units


class SentenceSelector(Protocol):
    """Chooses what answers. ``reads_pool``: it reads the whole candidate pool (``candidate_pool``
    passages), not only the first ``top_k``."""

    name: str
    reads_pool: bool

    def select(self, question: str, query: str, passages: Sequence[Passage]) -> Selection:
        """The units that answer ``question`` (``query``: its standalone form, what was searched)
        among ``passages`` (best first), or an empty selection."""

    def describe(self) -> dict[str, Any]:
        """What an eval's configuration records about this selector (name, thresholds, files)."""


SelectorFactory = Callable[["PipelineContext"], SentenceSelector]
selectors: Registry[SelectorFactory] = Registry(
    "selectors", "answer_scorer",
    builtins=("assistant.selectors.rules", "assistant.selectors.calibrated", "assistant.selectors.gated",
              "assistant.selectors.reader"))


def create_selector(name: str, context: "PipelineContext") -> SentenceSelector:
    return selectors.get(name)(context)
