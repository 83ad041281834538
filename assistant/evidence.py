"""Evidence: which retrieved sentence answers the question, with a calibrated probability.

Every sentence of the retrieved passages (and, for a plural question, every enumeration) is a
candidate. Each is described by features of (question, candidate, passage): dense cosines and
their margins over the other candidates, the share of the question's words (weighted by corpus
IDF) found in the sentence, around it, in its passage and in its document's title, words the
corpus never uses, facts of the kind the question asks for (a date for « quand », a name for
« qui »...) that the question does not already hold, and the retrieval ranks. A model fitted on
data (``assistant calibrate``, stored in ``assistant/calibration/``) turns them into the
probability that the candidate holds the answer; a second model, from the best candidates and the question, gives the
probability that the corpus answers at all. ``calibrated.py`` quotes the best candidate, or
abstains when that probability is below the recorded threshold.

Per question the work is proportional to the retrieved passages only: everything about the
corpus (stems, IDF, facts of each sentence) is computed once at load time.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from .selectors.base import Unit
from .calibration import Calibration
from .chunking import Chunk, Sentence, enumerations
from .embeddings import Embedder
from .errors import AssistantError
from .stores import Index
from .answer_types import (ANSWER_TYPES, QUESTION_WORDS, QuestionProfile, new_facts, profile_question,
                        question_words, sentence_facts)
from .types import Passage
from .safety import is_instruction
from .text import token_stems, words

FEATURES: tuple[str, ...] = (
    # The question, whatever the candidate.
    "q_english", "q_unknown", "q_unknown_name", "q_best_cosine", "q_best_passage_coverage",
    "q_best_coverage", *(f"q_type_{t}" for t in ANSWER_TYPES), "q_wants_list",
    # The candidate against the others.
    "cosine", "cosine_gap", "cosine_rank", "passage_cosine", "passage_cosine_gap", "bm25", "passage_rank",
    "coverage", "coverage_gap", "context_coverage", "passage_coverage", "title_coverage",
    "exact_coverage", "bigrams", "neighbour_cosine", "cosine_rank_in_passage",
    "document_coverage", "missing_rare", "q_best_document_coverage",
    # What the candidate states.
    "novelty", "length", "typed_fact", "typed_fact_near", "q_counted", "counted_near",
    "new_numbers", "new_names", "new_dates",
    "is_list", "list_wanted", "position",
)
# The question as a whole: its best candidate (by the candidate model) and how far ahead it is.
ANSWERABLE_FEATURES: tuple[str, ...] = (
    "best_logit", "best_margin", "q_english", "q_unknown", "q_unknown_name", "q_best_cosine",
    "q_best_passage_coverage", "q_best_coverage", "coverage", "exact_coverage", "bigrams", "title_coverage",
    "passage_cosine", "typed_fact", "document_coverage", "missing_rare", "q_best_document_coverage",
)


_COLUMN = {name: i for i, name in enumerate(FEATURES)}  # a candidate feature's column in the matrix

# A retrieved passage, for the reranker (``reranking.py``): how the retrievers placed it, and the best
# of its candidates' features (a passage holds the answer when one of its sentences does).
PASSAGE_FEATURES: tuple[str, ...] = (
    "passage_cosine", "bm25", "passage_rank", "dense_rank", "bm25_rank", "passage_length",
    "best_cosine", "best_coverage", "best_exact_coverage", "best_bigrams", "best_typed_fact_near",
    "best_context_coverage", "best_typed_fact", "best_neighbour_cosine",
    "passage_coverage", "title_coverage", "document_coverage", "missing_rare", "passage_cosine_gap",
    "least_cosine_gap", "least_coverage_gap",
)
_BEST = ("cosine", "coverage", "exact_coverage", "bigrams", "typed_fact_near", "context_coverage", "typed_fact",
         "neighbour_cosine")
_OF_PASSAGE = ("passage_coverage", "title_coverage", "document_coverage", "missing_rare", "passage_cosine_gap")


def answerable_row(matrix: np.ndarray, probabilities: np.ndarray) -> np.ndarray:
    """The answerability features of one question from its candidates' rows and probabilities."""
    order = np.argsort(-probabilities, kind="stable")
    best = probabilities[order[0]]
    second = probabilities[order[1]] if len(order) > 1 else 0.0
    clipped = min(max(best, 1e-6), 1 - 1e-6)
    row = matrix[order[0]]
    return np.array([math.log(clipped / (1 - clipped)), best - second,
                     *(row[_COLUMN[name]] for name in ANSWERABLE_FEATURES[2:])])


@dataclass(frozen=True)
class Evidence:
    """The scored candidates of the retrieved passages, best first, and the passages reranked."""

    question: str
    query: str
    profile: QuestionProfile
    candidates: tuple[Unit, ...]
    passages: tuple[Passage, ...]  # the retrieved passages, the one holding the best candidate first
    confidence: float  # calibrated probability that the corpus answers the question
    threshold: float  # below it, the engines abstain

    @property
    def best(self) -> Unit | None:
        return self.candidates[0] if self.candidates else None

    @property
    def answerable(self) -> bool:
        return self.best is not None and self.confidence >= self.threshold


class EvidenceScorer:
    """Scores candidates with the calibrated model; ``gather`` is the one public step."""

    def __init__(self, index: Index, embedder: Embedder, calibration: Calibration | None) -> None:
        """``calibration`` None: features only (what ``assistant calibrate`` fits on)."""
        self.index, self.embedder, self.calibration = index, embedder, calibration
        if calibration is not None and (calibration.candidate.features, calibration.answerable.features) \
                != (FEATURES, ANSWERABLE_FEATURES):
            raise AssistantError(f"La calibration {calibration.path} a été ajustée sur d'autres indices : "
                                 "relancez `assistant calibrate`.")
        # A sentence that gives the assistant orders is neither an answer nor part of what the corpus knows.
        self._instructions = frozenset(s.id for s in index.sentences if is_instruction(s.text))
        sentences, ignored = index.sentences, self._instructions
        # Each sentence's analysis is made when a question first reaches it and kept (bounded): made for
        # every sentence at start, it took 1.1 GB and a minute at 20 MB of text, for the few dozen
        # sentences a question reads.
        self._tokens = _Cached(lambda i: [] if i in ignored else token_stems(index.sentence(i).text))
        self._stems = _Cached(lambda p: frozenset(t for t in self._tokens[p] if t))
        self._facts = _Cached(lambda i: sentence_facts(index.sentence(i).text))
        self._words = _Cached(lambda i: question_words(index.sentence(i).text))
        headers: dict[str, frozenset[str]] = {}  # many chunks share a "title › section" header

        def header_stems(header: str) -> frozenset[str]:
            if header not in headers:
                headers[header] = frozenset(t for t in token_stems(header) if t)
            return headers[header]

        frequency: dict[str, int] = {}
        for sentence in sentences:
            if sentence.id not in ignored:
                for stem in set(token_stems(sentence.text)):
                    if stem:
                        frequency[stem] = frequency.get(stem, 0) + 1
        n = max(len(sentences), 1)
        self._idf = {t: math.log(1 + n / df) for t, df in frequency.items()}
        self._unknown_idf = math.log(1 + n / 0.5)
        self._header_stems = header_stems
        self._title_stems = {c.document: frozenset(t for t in token_stems(c.title) if t) for c in index.chunks}
        self._vocabulary = frozenset(frequency).union(*(header_stems(c.context_header) for c in index.chunks))
        chunks_of: dict[str, list[Chunk]] = {}
        for chunk in index.chunks:
            chunks_of.setdefault(chunk.document, []).append(chunk)

        def document_stems(document: str) -> frozenset[str]:
            return frozenset(t for chunk in chunks_of[document] for t in header_stems(chunk.context_header)).union(
                t for chunk in chunks_of[document] for s in chunk.sentences if s.id not in ignored
                for t in token_stems(s.text) if t)

        self._document_stems = _Cached(document_stems, size=4096)
        self._last = threading.local()  # the last analysis of this thread (see ``features``)

    def word_idf(self, word: str) -> float:
        """The inverse document frequency, over the corpus's sentences, of a word's stem (a word the
        corpus never uses weighs as the rarest)."""
        stem = next((t for t in token_stems(word) if t), None)
        return self._idf.get(stem, self._unknown_idf) if stem else 0.0

    def features(self, question: str, query: str, passages: Sequence[Passage],
                 ) -> tuple[list[tuple[Sentence, ...]], list[Passage], np.ndarray, QuestionProfile]:
        """The candidates of ``passages`` and their feature matrix (rows in FEATURES order).

        The reranker reads the pool in retrieval order, then the engine reads the same pool in its
        new order: the second call reorders the first one's rows (same values as computing them
        again, at a fraction of the cost). One analysis is kept per thread: a request is one thread."""
        key = (question, query, frozenset((p.chunk_id, p.dense_score, p.bm25_score) for p in passages))
        last = getattr(self._last, "analysis", None)
        if last is not None and last[0] == key:
            return _reordered(*last[1], passages)
        analysis = self._analyse(question, query, passages)
        self._last.analysis = (key, analysis)
        return analysis

    def _analyse(self, question: str, query: str, passages: Sequence[Passage],
                 ) -> tuple[list[tuple[Sentence, ...]], list[Passage], np.ndarray, QuestionProfile]:
        profile = profile_question(question)
        analysed = [(w, t) for w, t in zip(words(query), token_stems(query)) if t and w not in QUESTION_WORDS]
        query_tokens = [t for _, t in analysed]
        weights = {t: self._idf.get(t, self._unknown_idf) for t in query_tokens}
        surface = {w: self._idf.get(t, self._unknown_idf) for w, t in analysed}
        surface_total = sum(surface.values())
        pairs = list(zip(query_tokens, query_tokens[1:]))
        total = sum(weights.values())
        unknown = [t for t in weights if t not in self._vocabulary]
        asked = question_words(query)
        names = _capitalised(query)
        unknown_name = any(t not in self._vocabulary for n in names for t in token_stems(n) if t)
        vector = self.embedder.embed_query(query)
        index = self.index
        counted = next(iter(t for t in token_stems(profile.counted or "") if t), None)

        def coverage(stems: frozenset[str]) -> float:
            return sum(w for t, w in weights.items() if t in stems) / total if total else 0.0

        units: list[tuple[Sentence, ...]] = []
        owners: list[int] = []
        for rank, passage in enumerate(passages):
            chunk = index.chunk(passage.chunk_id)
            sentences = tuple(s for s in chunk.sentences if s.id not in self._instructions)  # orders are no answers
            units += [(s,) for s in sentences]
            owners += [rank] * len(sentences)
            if profile.wants_list:  # a plural question may be answered by a whole enumeration
                lists = enumerations(sentences)
                units += lists
                owners += [rank] * len(lists)
        if not units:
            return [], list(passages), np.zeros((0, len(FEATURES)), np.float32), profile
        unit_ids = [[s.id for s in unit] for unit in units]
        # One product over the sentences in index order (``sentence_cosines``): the same pool in another
        # order must give the same features (see ``features``).
        cosine_of = index.sentence_cosines({i for ids in unit_ids for i in ids}, vector)
        cosines = [max(cosine_of[i] for i in ids) for ids in unit_ids]
        cosines_array = np.array(cosines)
        passage_cosines = np.array([p.dense_score for p in passages])
        bm25 = np.array([p.bm25_score for p in passages])
        bm25 = bm25 / bm25.max() if bm25.max() > 0 else bm25
        passage_coverage = []
        for passage in passages:
            chunk = index.chunk(passage.chunk_id)
            stems = frozenset().union(self._header_stems(chunk.context_header),
                                      *(self._stems[s.id] for s in chunk.sentences))
            passage_coverage.append(coverage(stems))
        unit_coverage = [coverage(frozenset().union(*(self._stems[p] for p in ps))) for ps in unit_ids]
        best_cosine, best_coverage = float(cosines_array.max()), max(unit_coverage)
        # The question's words in each retrieved document: a topic the corpus lacks leaves its rarest words out.
        document_coverage, missing_rare = {}, {}
        for passage in passages:
            stems = self._document_stems[passage.document]
            if passage.document not in document_coverage:
                document_coverage[passage.document] = coverage(stems)
                missing_rare[passage.document] = max((w for t, w in weights.items() if t not in stems),
                                                     default=0.0) / self._unknown_idf
        order = np.argsort(-cosines_array, kind="stable")
        cosine_rank = np.empty(len(units))
        cosine_rank[order] = np.arange(len(units))
        query_stems = frozenset(weights)
        q_row = [float(profile.language == "en"), sum(weights[t] for t in unknown) / total if total else 0.0,
                 float(unknown_name), best_cosine, max(passage_coverage), best_coverage,
                 *(float(profile.answer_type == t) for t in ANSWER_TYPES), float(profile.wants_list)]
        rows = []
        in_passage_rank = np.zeros(len(units))
        for rank in set(owners):
            members = [i for i, o in enumerate(owners) if o == rank]
            ordered = sorted(members, key=lambda i: -cosines[i])
            for r, i in enumerate(ordered):
                in_passage_rank[i] = r
        for i, (unit, ps) in enumerate(zip(units, unit_ids)):
            rank = owners[i]
            passage = passages[rank]
            chunk = index.chunk(passage.chunk_id)
            first = unit[0]
            at = chunk.sentences.index(first)
            window = chunk.sentences[max(0, at - 1):at + len(unit) + 1]  # the unit and a sentence either side
            neighbours = [s.id for s in window]
            stems = frozenset().union(*(self._stems[p] for p in ps))
            facts = [new_facts(self._facts[p], asked) for p in ps]
            typed = sum(len(f.of(profile.answer_type)) for f in facts)
            tokens = self._tokens[ps[0]]
            anchors = [j for j, t in enumerate(tokens) if t and t in query_stems]
            near = 0.0
            if typed and anchors and len(ps) == 1:
                distance = min(abs(a - f) for a in anchors for f in facts[0].of(profile.answer_type))
                near = 1.0 / (1.0 + distance)
            counted_near = float(bool(counted) and len(ps) == 1 and any(
                t == counted for f in facts[0].of("quantity") for t in tokens[f + 1:f + 4]))
            words_here = self._words[ps[0]] if len(ps) == 1 else frozenset().union(*(self._words[p] for p in ps))
            exact = sum(w for word, w in surface.items() if word in words_here) / surface_total if surface_total else 0.0
            bigrams = _bigram_share(pairs, [t for p in ps for t in self._tokens[p]])
            around = [s.id for s in window if s not in unit]
            neighbour = float((index.sentence_matrix(around) @ vector).max()) if around else 0.0
            counts = {kind: sum(f.count(kind) for f in facts) for kind in ("number", "name", "date")}
            length = sum(len(s.text) for s in unit)
            rows.append(q_row + [
                cosines[i], best_cosine - cosines[i], math.log1p(cosine_rank[i]),
                passage_cosines[rank], float(passage_cosines.max() - passage_cosines[rank]), bm25[rank],
                math.log1p(rank),
                unit_coverage[i], best_coverage - unit_coverage[i],
                coverage(frozenset().union(*(self._stems[p] for p in neighbours))), passage_coverage[rank],
                coverage(self._title_stems.get(chunk.document, frozenset())),
                exact, bigrams, neighbour, math.log1p(in_passage_rank[i]),
                document_coverage[chunk.document], missing_rare[chunk.document], max(document_coverage.values()),
                len(stems - query_stems) / len(stems) if stems else 0.0, math.log1p(length),
                float(typed > 0) if profile.answer_type else 0.0, near, float(bool(counted)), counted_near,
                math.log1p(counts["number"]), math.log1p(counts["name"]), math.log1p(counts["date"]),
                float(len(unit) > 1), float(len(unit) > 1 and profile.wants_list),
                at / max(len(chunk.sentences) - 1, 1),
            ])
        return units, [passages[o] for o in owners], np.asarray(rows, dtype=np.float64), profile

    def passage_features(self, question: str, query: str, passages: Sequence[Passage]) -> np.ndarray:
        """One row per passage, in PASSAGE_FEATURES order."""
        units, owners, matrix, _ = self.features(question, query, passages)
        pool = max(len(passages), 1)

        def log_ranks(values: list[float], found: list[bool]) -> list[float]:
            """log(1 + rank), best first; a passage that retriever did not return ranks last."""
            order = sorted(range(len(values)), key=lambda i: (-values[i], i))
            out = [0.0] * len(values)
            for r, i in enumerate(order):
                out[i] = math.log1p(r if found[i] else pool)
            return out

        dense = [p.dense_score for p in passages]
        lexical = [p.bm25_score for p in passages]
        top_lexical = max(lexical, default=0.0) or 1.0
        # Every passage has a cosine; BM25 returns only passages sharing a word with the query.
        dense_ranks = log_ranks(dense, [True] * len(dense))
        lexical_ranks = log_ranks(lexical, [v > 0 for v in lexical])
        rows = np.zeros((len(passages), len(PASSAGE_FEATURES)))
        units_of: dict[str, list[int]] = {}
        for i, owner in enumerate(owners):
            units_of.setdefault(owner.chunk_id, []).append(i)
        for rank, passage in enumerate(passages):
            mine = units_of.get(passage.chunk_id, [])
            head = [passage.dense_score, passage.bm25_score / top_lexical, math.log1p(rank), dense_ranks[rank],
                    lexical_ranks[rank], math.log(max(len(passage.text), 1))]
            if mine:  # a passage of instructions only has no candidate: the retrievers' view alone
                own = matrix[mine]
                tail = [*(own[:, _COLUMN[n]].max() for n in _BEST), *(own[0, _COLUMN[n]] for n in _OF_PASSAGE),
                        own[:, _COLUMN["cosine_gap"]].min(), own[:, _COLUMN["coverage_gap"]].min()]
                rows[rank] = head + tail
            else:
                rows[rank, :len(head)] = head
        return rows

    def gather(self, question: str, query: str, passages: Sequence[Passage]) -> Evidence:
        if self.calibration is None:
            raise AssistantError("Aucune calibration chargée : lancez `assistant calibrate`.")
        units, owners, matrix, profile = self.features(question, query, passages)
        if not units:
            return Evidence(question, query, profile, (), tuple(passages), 0.0, self.calibration.threshold)
        scores = self.calibration.candidate.probabilities(matrix)
        confidence = float(self.calibration.answerable.probabilities(answerable_row(matrix, scores)[None, :])[0])
        order = sorted(range(len(units)), key=lambda i: (-scores[i], i))
        candidates = tuple(Unit(units[i], round(float(scores[i]), 6), owners[i]) for i in order)
        ranked = list(dict.fromkeys([c.passage.chunk_id for c in candidates] + [p.chunk_id for p in passages]))
        by_id = {p.chunk_id: p for p in passages}
        return Evidence(question, query, profile, candidates, tuple(by_id[c] for c in ranked),
                        round(confidence, 6), self.calibration.threshold)


def _reordered(units: list[tuple[Sentence, ...]], owners: list[Passage], matrix: np.ndarray,
               profile: QuestionProfile, passages: Sequence[Passage],
               ) -> tuple[list[tuple[Sentence, ...]], list[Passage], np.ndarray, QuestionProfile]:
    """An analysis of the same passages in another order, as ``_analyse`` would give it: the units
    grouped by passage in the new order (each passage's own units in their order), the passage rank
    and the cosine rank (ties broken by unit order) recomputed; every other feature does not depend
    on the order."""
    position = {p.chunk_id: rank for rank, p in enumerate(passages)}
    order = sorted(range(len(units)), key=lambda i: (position[owners[i].chunk_id], i))
    new_owners = [passages[position[owners[i].chunk_id]] for i in order]
    rows = matrix[order].copy()
    if len(rows):
        rows[:, _COLUMN["passage_rank"]] = [math.log1p(position[o.chunk_id]) for o in new_owners]
        by_cosine = np.argsort(-rows[:, _COLUMN["cosine"]], kind="stable")
        rank = np.empty(len(rows))
        rank[by_cosine] = np.arange(len(rows))
        rows[:, _COLUMN["cosine_rank"]] = [math.log1p(r) for r in rank]
    return [units[i] for i in order], new_owners, rows, profile


class _Cached:
    """``compute(key)`` on first use, then kept; past ``size`` keys everything is forgotten at once
    (the next questions fill it again)."""

    def __init__(self, compute: Callable[[Any], Any], size: int = 50_000) -> None:
        self.compute, self.size = compute, size
        self._values: dict[Any, Any] = {}

    def __getitem__(self, key: Any) -> Any:
        value = self._values.get(key)
        if value is None:
            if len(self._values) >= self.size:
                self._values = {}
            value = self._values[key] = self.compute(key)
        return value


def _bigram_share(pairs: list[tuple[str, str]], tokens: list[str | None], window: int = 3) -> float:
    """Share of the question's consecutive word pairs that the sentence has in order, close together."""
    if not pairs:
        return 0.0
    at: dict[str, list[int]] = {}
    for i, t in enumerate(tokens):
        if t:
            at.setdefault(t, []).append(i)
    found = sum(1 for a, b in pairs if any(0 < j - i <= window for i in at.get(a, ()) for j in at.get(b, ())))
    return found / len(pairs)


def _capitalised(text: str) -> list[str]:
    """Capitalised words that do not start the text: names, acronyms."""
    tokens = text.split()
    return [t.strip(".,;:!?()«»\"'’") for t in tokens[1:] if t[:1].isupper()]
