"""The reader (``answer_scorer = "reader"``): the candidate sentences of the first reranked
passages read against the question with the French language pipeline (``reading.py``), the best
one chosen by a model fitted on data, and a confidence that says whether that answer is right.

Every candidate (a sentence, or an enumeration for a plural question) of the first
``reader.passages`` reranked passages is described by the evidence features (``evidence.py``:
cosines, word coverage, facts of the asked type, ranks) and the reading features (the asked kind of
entity or number the question lacks, its distance to the question's anchor lemmas in the
dependency tree, lemma overlap, the question's entities in the sentence). A logistic regression
picks the candidate; a second one, from the question and its best candidate, gives
``Answer.confidence``: the probability that the answer given is right (fitted out of fold with
questions about absent documents counted as wrong). At or above ``sure_threshold`` the sentence is
the answer (*sure*); between the two thresholds the closest passage is shown, at most
``window_chars`` characters around the likely sentence, marked *unsure*; below
``abstain_threshold``, or when the gated selector withholds its answer (a sure answer is given
whatever the gate says), no answer. All of it is fitted by ``assistant calibrate`` (``fitting.py``).
"""

from __future__ import annotations

import math
from functools import partial
from typing import TYPE_CHECKING, Any, Callable, Sequence

import numpy as np

from ..answer_types import question_words
from ..calibration import ReaderCalibration
from ..errors import AssistantError
from ..evidence import FEATURES, EvidenceScorer, answerable_row
from ..language import pack
from ..reading import READING_FEATURES, Pipeline, answer_span, read_question, reading_features, shared_pipeline
from ..text import guess_language
from ..types import Passage, Sentence
from .base import Selection, SentenceSelector, Unit, selectors
from .gated import gated_selector

if TYPE_CHECKING:
    from ..context import PipelineContext

CANDIDATE_FEATURES: tuple[str, ...] = FEATURES + READING_FEATURES
# The question as a whole, for the confidence: the answerability features of the best candidate
# (its logit and margin among them), how much of the probability it holds, the best rival in its own
# passage, its passage's rank, and its reading features.
CONFIDENCE_FEATURES: tuple[str, ...] = (
    "best_logit", "best_margin", *("a_" + f for f in
                                   ("q_english", "q_unknown", "q_unknown_name", "q_best_cosine",
                                    "q_best_passage_coverage", "q_best_coverage", "coverage", "exact_coverage",
                                    "bigrams", "title_coverage", "passage_cosine", "typed_fact", "document_coverage",
                                    "missing_rare", "q_best_document_coverage")),
    "best_share", "same_passage_rival", "best_passage_rank", *("best_" + f for f in READING_FEATURES),
)


class ReaderAnalysis:
    """The candidates of one question with both feature sets (what the reader and the fitting read)."""

    def __init__(self, units: list[tuple[Sentence, ...]], owners: list[Passage], matrix: np.ndarray,
                 passage_ranks: list[int], span: Callable[[str], tuple[int, int] | None] = lambda text: None,
                 ) -> None:
        self.units, self.owners, self.matrix, self.passage_ranks = units, owners, matrix, passage_ranks
        self.span = span  # where the asked fact stands in a candidate sentence's text


def analyse(scorer: EvidenceScorer, pipeline: Pipeline, question: str, query: str,
            passages: Sequence[Passage], read: int) -> ReaderAnalysis:
    """The candidates of the first ``read`` passages (in their order) and their rows in
    CANDIDATE_FEATURES order."""
    units, owners, matrix, profile = scorer.features(question, query, passages)
    rank_of = {p.chunk_id: r for r, p in enumerate(passages)}
    keep = [i for i, owner in enumerate(owners) if rank_of[owner.chunk_id] < read]
    units, owners, matrix = [units[i] for i in keep], [owners[i] for i in keep], matrix[keep]
    if not units:
        return ReaderAnalysis([], [], np.zeros((0, len(CANDIDATE_FEATURES))), [])
    texts = list(dict.fromkeys([question] + [s.text for unit in units for s in unit]))
    parsed = dict(zip(texts, pipeline.parse_many(texts)))
    reading = read_question(parsed[question], profile.answer_type)
    asked = question_words(query)
    weights = {anchor: scorer.word_idf(anchor) for anchor in reading.anchors}  # once per question
    rows = [np.max(np.array([reading_features(reading, parsed[s.text], asked, weights) for s in unit]),
                   axis=0) for unit in units]
    return ReaderAnalysis(units, owners, np.hstack([matrix, np.array(rows)]), [rank_of[o.chunk_id] for o in owners],
                          lambda text: answer_span(reading, parsed[text], asked))


def confidence_row(analysis: ReaderAnalysis, probabilities: np.ndarray) -> np.ndarray:
    """One row in CONFIDENCE_FEATURES order."""
    order = np.argsort(-probabilities, kind="stable")
    best = int(order[0])
    rival = max((probabilities[j] for j in order[1:] if analysis.passage_ranks[j] == analysis.passage_ranks[best]),
                default=0.0)
    evidence = analysis.matrix[:, :len(FEATURES)]
    return np.concatenate([answerable_row(evidence, probabilities),
                           [probabilities[best] / (probabilities.sum() or 1.0), rival,
                            math.log1p(analysis.passage_ranks[best])],
                           analysis.matrix[best, len(FEATURES):]])


class ReaderSelector:
    name = "reader"
    reads_pool = True  # the evidence features read the whole candidate pool

    def __init__(self, scorer: EvidenceScorer, model: ReaderCalibration, pipeline: Pipeline,
                 gate: SentenceSelector) -> None:
        if (tuple(model.candidate.features), tuple(model.confidence.features)) != (CANDIDATE_FEATURES,
                                                                                   CONFIDENCE_FEATURES):
            raise AssistantError("Le modèle de lecture a été ajusté sur d'autres indices : relancez "
                                 "`assistant calibrate`.")
        self.scorer, self.model, self.pipeline = scorer, model, pipeline
        self.gate = gate  # the gated selector: what it withholds, the reader withholds too

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "sure_threshold": self.model.sure_threshold,
                "abstain_threshold": self.model.abstain_threshold, "passages": self.model.passages,
                "window_chars": self.model.window_chars}

    def select(self, question: str, query: str, passages: Sequence[Passage]) -> Selection:
        analysis = analyse(self.scorer, self.pipeline, question, query, passages, self.model.passages)
        language = guess_language(question)
        if not analysis.units:
            return Selection(question, query, language, (), tuple(passages), confidence=0.0, certainty="abstained")
        probabilities = self.model.candidate.probabilities(analysis.matrix)
        confidence = float(self.model.confidence.probabilities(confidence_row(analysis, probabilities)[None, :])[0])
        confidence = round(confidence, 6)
        order = [int(i) for i in np.argsort(-probabilities, kind="stable")]
        best = order[0]
        ranked = _best_passage_first(passages, analysis.owners[best])
        unit = Unit(analysis.units[best], round(float(probabilities[best]), 6), analysis.owners[best])
        if confidence < self.model.sure_threshold and (confidence < self.model.abstain_threshold
                                                       or self.gate.select(question, query, passages).abstained):
            return Selection(question, query, language, (), ranked, confidence=confidence, certainty="abstained")
        if confidence >= self.model.sure_threshold or unit.is_list:
            sentence = unit.sentences[0].text
            span = None if unit.is_list else analysis.span(sentence)
            return Selection(question, query, language, (unit,), ranked, confidence=confidence, certainty="sure",
                             mark=partial(_fact_in, sentence=sentence, span=span) if span else None)
        members = window(order, [o.chunk_id for o in analysis.owners], [len(u) > 1 for u in analysis.units],
                         [sum(len(s.text) for s in u) for u in analysis.units],
                         quote_budget(self.model.window_chars, language))
        units = tuple(Unit(analysis.units[j], round(float(probabilities[j]), 6), analysis.owners[j]) for j in members)
        return Selection(question, query, language, units, ranked, confidence=confidence,
                         certainty="unsure", mark=partial(_likely_sentence, sentence=unit.sentences[0].text))


def window(order: Sequence[int], chunks: Sequence[str], is_list: Sequence[bool], lengths: Sequence[int],
           budget: int) -> list[int]:
    """An unsure answer's candidates: the best (``order[0]``), then the next likeliest single
    sentences of its passage while their characters (one space between) stay within ``budget``."""
    best = order[0]
    chosen, length = [best], lengths[best]
    for j in order[1:]:
        if is_list[j] or chunks[j] != chunks[best]:
            continue
        if length + lengths[j] + 1 <= budget:
            chosen.append(j)
            length += lengths[j] + 1
    return chosen


def quote_budget(window_chars: int, language: str) -> int:
    """The characters an unsure answer's quote may take for the whole answer to stay within
    ``window_chars``: what the sentence saying it is unsure, the quotation marks and the marker take
    is left out."""
    return window_chars - len(pack(language).strings["unsure"]) - len(" «  » [1]")


def _best_passage_first(passages: Sequence[Passage], best: Passage) -> tuple[Passage, ...]:
    return (best, *(p for p in passages if p.chunk_id != best.chunk_id))


def _fact_in(text: str, sentence: str, span: tuple[int, int]) -> tuple[tuple[int, int], ...]:
    """Where the asked fact stands in the answer's text (its sentence may have lost a leading
    connector: found by the fact's own words after the sentence's start)."""
    fact = sentence[span[0]:span[1]]
    at = text.find(fact)
    return ((at, at + len(fact)),) if at >= 0 else ()


def _likely_sentence(text: str, sentence: str) -> tuple[tuple[int, int], ...]:
    """Where the likely sentence stands in an unsure answer's text."""
    at = text.find(sentence)
    return ((at, at + len(sentence)),) if at >= 0 else ()


@selectors.register("reader")
def reader_selector(context: "PipelineContext") -> ReaderSelector:
    calibration = context.calibration
    if calibration.reader is None:
        raise AssistantError(f"La calibration {calibration.path} n'a pas de modèle de lecture (reader) : "
                             "relancez `assistant calibrate`.")
    return ReaderSelector(context.scorer, calibration.reader, shared_pipeline(), gated_selector(context))
