"""Reranking: the retrieved pool reordered by the fitted probability that a passage holds the answer.

Hybrid retrieval (``retrieval.py``) fuses two rankings by rank alone; on a library of many
documents its first passage is often a neighbour of the right one, or a passage of another
document sharing the question's common words. The reranker reads, for each passage of the pool,
how both retrievers placed it and what its best sentence shares with the question (rare words
by corpus IDF, exact words, word pairs, a fact of the asked kind near them, its title), through a
logistic regression fitted by ``assistant calibrate`` on questions whose evidence is known
(cross-validated by document, stored beside the answer scorer in ``assistant/calibration/``).
Per question the work is proportional to the pool only.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Sequence

import numpy as np

from .calibration import Logistic
from .errors import AssistantError
from .evidence import PASSAGE_FEATURES, EvidenceScorer
from .types import Passage


class Reranker:
    """Orders retrieved passages by the fitted model; ``rerank`` is the one public step."""

    def __init__(self, scorer: EvidenceScorer, model: Logistic) -> None:
        if tuple(model.features) != PASSAGE_FEATURES:
            raise AssistantError("Le modèle de reclassement a été ajusté sur d'autres indices : "
                                 "relancez `assistant calibrate`.")
        self.scorer, self.model = scorer, model

    def rerank(self, question: str, query: str, passages: Sequence[Passage]) -> list[Passage]:
        """The passages, most probable first (ties keep the retrieval order); each passage's
        ``score`` becomes that probability."""
        if len(passages) < 2:
            return list(passages)
        probabilities = self.model.probabilities(self.scorer.passage_features(question, query, passages))
        order = np.argsort(-probabilities, kind="stable")
        return [replace(passages[i], score=round(float(probabilities[i]), 6)) for i in order]
