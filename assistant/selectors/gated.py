"""The gated selector (``answer_scorer = "gated"``, the default): the rules choose what to quote,
the fitted answerability vetoes.

The rules read the first ``top_k`` passages as they do alone; the calibrated evidence scorer reads
the whole candidate pool and gives the probability that the corpus answers (it learnt from
questions about absent documents). Below the calibration's ``gate_threshold`` the rules' choice is
withheld. ``assistant calibrate`` fits that threshold together with the rules' own (see
``fitting.choose_thresholds``: at most ``--gate-target`` false abstention added, 0.04 for the
shipped file).
"""

from __future__ import annotations

from dataclasses import replace
from functools import partial
from typing import TYPE_CHECKING, Any, Sequence

from ..evidence import EvidenceScorer
from ..types import Passage
from .base import Selection, SentenceSelector, selectors
from .calibrated import marked_spans
from .rules import rules_selector

if TYPE_CHECKING:
    from ..context import PipelineContext


class GatedSelector:
    name = "gated"
    reads_pool = True  # the gate's features read the whole candidate pool

    def __init__(self, rules: SentenceSelector, scorer: EvidenceScorer, top_k: int) -> None:
        self.rules, self.scorer, self.top_k = rules, scorer, top_k

    def describe(self) -> dict[str, Any]:
        return {**self.rules.describe(), "name": self.name, "gate_threshold": self.scorer.calibration.gate_threshold}

    def select(self, question: str, query: str, passages: Sequence[Passage]) -> Selection:
        """``passages``: the candidate pool; the rules read its first ``top_k``."""
        chosen = self.rules.select(question, query, passages[:self.top_k])
        if chosen.abstained:
            return chosen
        evidence = self.scorer.gather(question, query, passages)
        if evidence.confidence < self.scorer.calibration.gate_threshold:
            return replace(chosen, units=(), confidence=evidence.confidence)
        quoted = [s.text for unit in chosen.units for s in unit.sentences]
        return replace(chosen, confidence=evidence.confidence,
                       mark=partial(marked_spans, sentences=quoted, evidence=evidence))


@selectors.register("gated")
def gated_selector(context: "PipelineContext") -> GatedSelector:
    return GatedSelector(rules_selector(context), context.scorer, context.settings.top_k)
