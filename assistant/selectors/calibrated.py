"""The calibrated sentence selector (``answer_scorer = "calibrated"``): the answer scorer of
``evidence.py`` picks what to quote.

The best candidate (a sentence, or an enumeration for a plural question), or nothing when the
calibrated probability that the corpus answers is below the fitted threshold. The retrieved
passages come back reranked (the one holding the quoted sentence first), and the fact the question
asks for is marked inside the quoted sentence (``Answer.spans``, ``Answer.markdown``).
"""

from __future__ import annotations

import re
from functools import partial
from typing import TYPE_CHECKING, Any, Sequence

from ..answer_types import FACT_OF_TYPE, plain, question_words, sentence_facts
from ..evidence import Evidence, EvidenceScorer
from ..types import Passage
from .base import Selection, Unit, selectors

if TYPE_CHECKING:
    from ..context import PipelineContext

_PARTICLES = frozenset("de d du des la le von van der di da del y".split())


class CalibratedSelector:
    """The best-scored candidate, or none."""

    name = "calibrated"
    reads_pool = True  # the calibrated features read the whole candidate pool

    def __init__(self, scorer: EvidenceScorer, max_sentences: int = 1) -> None:
        self.scorer, self.max_sentences = scorer, max_sentences

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "threshold": self.scorer.calibration.threshold,
                "max_sentences": self.max_sentences}

    def choose(self, evidence: Evidence) -> list[Unit]:
        """The best candidate when the question is judged answerable; with ``max_sentences`` > 1,
        the next best sentences of the same passage, up to that many."""
        if not evidence.answerable:
            return []
        best = evidence.candidates[0]
        units, used = [best], {s.id for s in best.sentences}
        for unit in evidence.candidates[1:]:
            if len(units) >= self.max_sentences:
                break
            if not unit.is_list and unit.passage.chunk_id == best.passage.chunk_id and unit.sentences[0].id not in used:
                units.append(unit)
                used.add(unit.sentences[0].id)
        return units

    def select(self, question: str, query: str, passages: Sequence[Passage]) -> Selection:
        evidence = self.scorer.gather(question, query, passages)
        units = tuple(self.choose(evidence))
        mark = partial(marked_spans, sentences=[unit.sentences[0].text for unit in units], evidence=evidence)
        return Selection(question, query, evidence.profile.language, units, tuple(evidence.passages),
                         confidence=evidence.confidence, mark=mark if units else None)


@selectors.register("calibrated")
def calibrated_selector(context: "PipelineContext") -> CalibratedSelector:
    return CalibratedSelector(context.scorer, max_sentences=1)  # one sentence (issue 10)


def marked_spans(text: str, sentences: list[str], evidence: Evidence) -> tuple[tuple[int, int], ...]:
    """Where, in an answer's ``text``, the asked fact of each quoted sentence stands."""
    spans = []
    for sentence in sentences:
        span = answer_span(sentence, evidence)
        at = text.find(sentence[span[0]:span[1]]) if span else -1
        if span and at >= 0:
            spans.append((at, at + span[1] - span[0]))
    return tuple(sorted(set(spans)))


def answer_span(text: str, evidence: Evidence) -> tuple[int, int] | None:
    """Where, in a quoted sentence, the fact the question asks for stands: the new date, number or
    name (one the question does not already hold) closest to the question's own words."""
    kind = evidence.profile.answer_type
    if kind is None or kind == "reason" or "\n" in text:
        return None
    asked = question_words(evidence.query)
    tokens = list(re.finditer(r"\w+", text))
    stated = sentence_facts(text)
    facts = [(k, words, at) for k, words, at in stated
             if k == FACT_OF_TYPE[kind]
             and any(w not in asked for w in words)]
    if not facts:
        return None
    anchors = [i for i, m in enumerate(tokens) if plain(m.group()) in asked and len(m.group()) > 2]
    _, words, at = min(facts, key=lambda f: (min((abs(a - f[2]) for a in anchors), default=0), f[2]))
    first, last = at, min(at + len(words) - 1, len(tokens) - 1)
    if kind in ("name", "place"):  # a name runs over its capitalised words and particles
        while last + 1 < len(tokens) and (tokens[last + 1].group()[:1].isupper() or (
                plain(tokens[last + 1].group()) in _PARTICLES and last + 2 < len(tokens)
                and tokens[last + 2].group()[:1].isupper())):
            last += 1
        while first - 1 > 0 and tokens[first - 1].group()[:1].isupper():
            first -= 1
    elif kind == "quantity" and last + 1 < len(tokens) and plain(tokens[last + 1].group()) not in asked:
        last += 1  # the counted noun: « 240 députés », « cinq ans »
    elif kind == "date":  # a day, month and year read as one date
        date_starts = {a for k, _, a in stated if k == "date"}
        while last + 1 < len(tokens) and last + 1 in date_starts:
            last += 1
    return tokens[first].start(), tokens[last].end()
