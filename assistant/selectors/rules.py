"""The rule-based sentence selector (``answer_scorer = "rules"``, and what ``gated`` vetoes).

Sentences of the retrieved passages are scored against the question with the embedding model (the
query vector and the sentence vectors computed at index time), IDF-weighted word overlap, and the
passage's own match (its section heading included). A sentence only counts as an answer when it
holds a fact of the kind the question asks for, close to the question's own words (see
``questions.py``); when no retrieved sentence does, or the best one is too weak, nothing is
selected. Its weights, windows and margins are read from the calibration file (``rules``), beside
the score threshold ``assistant calibrate`` fits for them.
"""

from __future__ import annotations

import bisect
import math
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

from ..chunking import enumerations
from ..embeddings import Embedder
from ..errors import AssistantError
from ..questions import QuestionProfile, is_framing, has_type, profile_question, token_spans, type_positions
from ..safety import is_instruction
from ..text import content_stems
from ..types import Passage, Sentence
from .base import Selection, Unit, selectors

if TYPE_CHECKING:
    from ..context import PipelineContext
    from ..stores import Index

_GENITIVES = frozenset({"de", "du", "des", "d", "of"})


@dataclass(frozen=True)
class RulesEvidence:
    """The scored units of the retrieved passages, best first."""

    question: str
    query: str
    profile: QuestionProfile
    anchors: frozenset[str]
    candidates: tuple[Unit, ...]
    best_similarity: float = 0.0  # the best sentence's cosine with the query
    shared_words: int = 0  # question words (stems) that occur in the corpus
    # Anchors the corpus's sentences know: the only ones worth looking for next to a fact.
    known_anchors: frozenset[str] = frozenset()


@dataclass(frozen=True)
class RulesParameters:
    """The rules' weights, windows and margins (the calibration file's ``rules`` section)."""

    lexical_weight: float  # IDF-weighted word overlap, beside the sentence's cosine
    heading_weight: float  # the passage header's cosine
    passage_weight: float  # the passage's cosine
    type_window: int  # tokens between a fact of the asked type and a question word
    name_window: int  # the same for a name
    alternatives_margin: float  # units this close to the best may be quoted first when they hold the fact
    extra_margin: float  # neighbours of the first unit this close are added
    unmatched_min_similarity: float  # a question sharing no word with the corpus needs this cosine (French)
    cross_lingual_min_similarity: float  # the same across languages

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> "RulesParameters":
        return cls(**{name: data[name] for name in cls.__dataclass_fields__})


class RulesSelector:
    """Chooses the sentences that answer, or none."""

    name = "rules"
    reads_pool = False  # the first ``top_k`` passages

    def __init__(self, index: "Index", embedder: Embedder, parameters: RulesParameters,
                 abstain_threshold: float = 0.5, max_sentences: int = 3, max_chars: int = 0) -> None:
        self.index, self.embedder, self.parameters = index, embedder, parameters
        self.abstain_threshold, self.max_sentences = abstain_threshold, max_sentences
        p = parameters
        self.lexical_weight, self.heading_weight, self.passage_weight = p.lexical_weight, p.heading_weight, p.passage_weight
        self.type_window, self.name_window = p.type_window, p.name_window
        self.unmatched_min_similarity = p.unmatched_min_similarity
        self.cross_lingual_min_similarity = p.cross_lingual_min_similarity
        self.alternatives_margin, self.extra_margin = p.alternatives_margin, p.extra_margin
        self.max_chars = max_chars  # > 0: neighbours are added only while the answer stays this short
        # A sentence that gives the assistant orders is neither an answer nor part of what the corpus knows.
        self._instructions = frozenset(s.id for s in index.sentences if is_instruction(s.text))
        self._stems = {s.id: frozenset() if s.id in self._instructions else frozenset(content_stems(s.text))
                       for s in index.sentences}
        self._heading_stems = {c.id: frozenset(content_stems(c.context_header)) for c in index.chunks}
        frequency = Counter(t for stems in self._stems.values() for t in stems)
        n = len(self._stems)
        self._idf = {t: math.log(1 + n / df) for t, df in frequency.items()}
        self._unknown_idf = math.log(1 + n / 0.5)
        # Words in most sentences (the country, the organisation) locate nothing.
        self._common = frozenset(t for t, df in frequency.items() if df / n > 0.3)
        self._vocabulary = _Vocabulary(frozenset(frequency).union(*self._heading_stems.values()))
        self._sentence_vocabulary = _Vocabulary(frozenset(frequency))

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "abstain_threshold": self.abstain_threshold,
                "max_sentences": self.max_sentences, "max_chars": self.max_chars}

    # -- evidence -------------------------------------------------------------------------
    def _coverage(self, query_stems: frozenset[str], stems: frozenset[str]) -> float:
        query_stems = query_stems - self._common  # words in most sentences tell nothing apart
        total = sum(self._idf.get(t, self._unknown_idf) for t in query_stems)
        return sum(self._idf.get(t, 0.0) for t in query_stems & stems) / total if total else 0.0

    def gather(self, question: str, query: str, passages: Sequence[Passage]) -> RulesEvidence:
        profile = profile_question(question)
        query_stems = frozenset(content_stems(query))
        anchors = frozenset(t for t in query_stems if t not in self._common and not is_framing(t))
        vector = self.embedder.embed_query(query)
        norm = 1 + self.passage_weight + self.heading_weight
        index = self.index

        def combine(dense: float, lexical: float, heading: float, passage: Passage) -> float:
            return round((dense + self.lexical_weight * lexical + self.heading_weight * heading
                          + self.passage_weight * passage.dense_score) / norm, 6)

        units, best_similarity = [], 0.0
        for passage in passages:
            chunk = index.chunk(passage.chunk_id)
            heading = float(index.heading_vector(chunk.id) @ vector)
            sentences = tuple(s for s in chunk.sentences if s.id not in self._instructions)
            for sentence in sentences:
                dense = float(index.sentence_vector(sentence.id) @ vector)
                best_similarity = max(best_similarity, dense)
                lexical = self._coverage(query_stems, self._stems[sentence.id])
                units.append(Unit((sentence,), combine(dense, lexical, heading, passage), passage))
            if profile.wants_list:  # a plural question may be answered by a whole enumeration
                for items in enumerations(sentences):
                    stems = frozenset().union(self._heading_stems[chunk.id], *(self._stems[i.id] for i in items))
                    alone = len(items) == len(chunk.sentences)  # then the passage vector is the list's
                    dense = passage.dense_score if alone else max(
                        float(index.sentence_vector(i.id) @ vector) for i in items)
                    units.append(Unit(items, combine(dense, self._coverage(query_stems, stems), heading, passage),
                                      passage))
        units.sort(key=lambda unit: -unit.score)
        shared = sum(1 for t in query_stems if not is_framing(t) and self._vocabulary.knows(t))
        known = frozenset(a for a in anchors if self._sentence_vocabulary.knows(a))
        return RulesEvidence(question, query, profile, anchors, tuple(units), best_similarity, shared, known)

    # -- checks ---------------------------------------------------------------------------
    def _holds_fact(self, evidence: RulesEvidence, unit: Unit) -> bool:
        return any(self._sentence_holds_fact(evidence, sentence) for sentence in unit.sentences)

    def _sentence_holds_fact(self, evidence: RulesEvidence, sentence: Sentence) -> bool:
        """Does the sentence hold a fact of the asked type near the question's own words?"""
        kind = evidence.profile.answer_type
        if kind is None:
            return True
        if not has_type(kind, sentence.text):
            return False
        tokens = token_spans(sentence.text)
        stems_by_token = [next(iter(content_stems(word)), None) for word, _, _ in tokens]
        # Words the corpus does not know are paraphrases, another language, or what is missing.
        known = evidence.known_anchors
        anchor_at = _positions(stems_by_token, known)
        counted = next(iter(content_stems(evidence.profile.counted_noun or "")), None)
        if kind == "quantity" and counted in self._idf and counted not in stems_by_token:
            return False  # "Combien de régions": a count of something else is no answer
        if kind in {"name", "place", "organisation"}:
            # A proper name the question does not already contain, next to what it is the name of.
            question_words = {word for word, _, _ in token_spans(evidence.query)}
            # Names found all over the corpus (its country, its organisation) answer nothing.
            # A capitalised complement ("président de la République") is a title, not a name.
            fact_at = [i for i, (word, capital, _) in enumerate(tokens)
                       if capital and i > 0 and word not in question_words and len(word) > 1
                       and stems_by_token[i] not in self._common
                       and not (tokens[i - 1][0] in _GENITIVES or (i > 1 and tokens[i - 2][0] in _GENITIVES
                                                                   and tokens[i - 1][0] in {"la", "l"}))]
            focus = (set(evidence.profile.focus) - self._common) or evidence.anchors
            focus_at = _positions(stems_by_token, focus)
            return any(abs(f - a) <= self.name_window for f in fact_at for a in focus_at)
        fact_at = [_token_index(tokens, p) for p in type_positions(kind, sentence.text)]
        if not fact_at:
            return False
        if not known:  # nothing to locate the fact with: its type has to do
            return True
        return any(abs(f - a) <= self.type_window for f in fact_at for a in anchor_at)

    # -- selection ------------------------------------------------------------------------
    def on_topic(self, evidence: RulesEvidence) -> bool:
        """Off-topic questions still find a "best" sentence: dense scores are never low here.
        A question is on topic when it shares words with the corpus, or, without any, when its
        best sentence is very close (calibrated separately across languages, where words cannot match)."""
        if evidence.shared_words:
            return True
        bar = self.unmatched_min_similarity if evidence.profile.language == "fr" else self.cross_lingual_min_similarity
        return evidence.best_similarity >= bar

    def primary(self, evidence: RulesEvidence) -> Unit | None:
        """What the answer would quote first, before the score threshold: the best-scored unit
        (or one close to it) that holds a fact of the asked kind, on an on-topic question."""
        if not evidence.candidates or not self.on_topic(evidence):
            return None
        best = evidence.candidates[0].score
        return next((unit for unit in evidence.candidates
                     if unit.score >= best - self.alternatives_margin and self._holds_fact(evidence, unit)), None)

    def choose(self, evidence: RulesEvidence) -> list[Unit]:
        primary = self.primary(evidence)
        if primary is None or primary.score < self.abstain_threshold:
            return []
        units, used = [primary], {s.id for s in primary.sentences}
        length = sum(len(s.text) for s in primary.sentences)
        for unit in evidence.candidates:
            if len(units) >= self.max_sentences or unit.score < primary.score - self.extra_margin:
                break
            # Neighbours from the same passage add context at no cost to citation precision (within
            # max_chars when set).
            sentence = unit.sentences[0]
            if not unit.is_list and not sentence.in_list and sentence.id not in used \
                    and sentence.chunk_id == primary.passage.chunk_id \
                    and (not self.max_chars or length + len(sentence.text) <= self.max_chars):
                units.append(unit)
                used.add(sentence.id)
                length += len(sentence.text)
        return units


    def select(self, question: str, query: str, passages: Sequence[Passage]) -> Selection:
        evidence = self.gather(question, query, passages)
        return Selection(question, query, evidence.profile.language, tuple(self.choose(evidence)), tuple(passages))


def rules_parameters(context: "PipelineContext") -> RulesParameters:
    """The calibration file's rules section, with the settings that override it."""
    calibration, settings = context.calibration, context.settings
    if calibration.rules is None:
        raise AssistantError(f"La calibration {calibration.path} n'a pas de paramètres pour les règles (rules) : "
                             "relancez `assistant calibrate`.")
    values = dict(calibration.rules)
    for name in ("unmatched_min_similarity", "cross_lingual_min_similarity"):
        if getattr(settings, name) is not None:
            values[name] = getattr(settings, name)
    return RulesParameters.from_dict(values)


def rules_selector(context: "PipelineContext", abstain_threshold: float | None = None) -> RulesSelector:
    """The rules with the settings; their score threshold is ``abstain_threshold``, else the
    setting, else the calibration file's fitted one."""
    settings = context.settings
    threshold = abstain_threshold if abstain_threshold is not None else settings.abstain_threshold
    if threshold is None:
        calibration = context.calibration
        if calibration.rules_threshold is None:
            raise AssistantError(f"La calibration {calibration.path} n'a pas de seuil pour les règles : relancez "
                                 "`assistant calibrate` ou donnez le réglage abstain_threshold.")
        threshold = calibration.rules_threshold
    return RulesSelector(context.index, context.embedder, rules_parameters(context), abstain_threshold=threshold,
                         max_sentences=settings.max_answer_sentences, max_chars=settings.max_answer_chars)


selectors.register("rules")(rules_selector)


class _Vocabulary:
    """The corpus's stems, asked the question ``_positions`` asks of a word (is it there, or does
    one stem extend the other?) in time that does not grow with the corpus: a set look-up for the
    stem and its prefixes, a binary search for longer stems that start with it."""

    def __init__(self, stems: frozenset[str]) -> None:
        self.stems, self.ordered = stems, sorted(stems)

    def knows(self, stem: str) -> bool:
        if stem in self.stems:
            return True
        if any(stem[:n] in self.stems for n in range(4, len(stem))):  # a known stem extended by this one
            return True
        if len(stem) < 4:
            return False
        at = bisect.bisect_left(self.ordered, stem)  # a known stem that extends this one
        return at < len(self.ordered) and self.ordered[at].startswith(stem)


def _positions(stems: list[str | None], wanted: set[str] | frozenset[str]) -> list[int]:
    """Where the wanted stems occur; one stem may extend the other (existé / existence)."""
    def matches(stem: str | None) -> bool:
        if stem is None:
            return False
        return stem in wanted or any(
            min(len(stem), len(w)) >= 4 and (stem.startswith(w) or w.startswith(stem))
            for w in wanted)
    return [i for i, stem in enumerate(stems) if matches(stem)]


def _token_index(tokens: list[tuple[str, bool, int]], position: int) -> int:
    index = 0
    for i, (_, _, start) in enumerate(tokens):
        if start <= position:
            index = i
    return index
