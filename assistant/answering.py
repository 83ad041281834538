"""Answers with citations: the extractive engine (default) and the domain objects it returns.

The extractive engine answers with one to three verbatim sentences of the retrieved passages.
Sentences are scored against the question with the embedding model (the query vector and the
sentence vectors computed at index time), IDF-weighted word overlap, and the passage's own match
(its section heading included). A sentence only counts as an answer when it holds a fact of the
kind the question asks for, close to the question's own words (see ``questions.py``); when no
retrieved sentence does, or the best one is too weak, the engine abstains.
"""

from __future__ import annotations

import bisect
import math
import re
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Iterator


from .chunking import Sentence, enumerations
from .embeddings import Embedder
from .index import Index
from .questions import QuestionProfile, is_framing, has_type, profile_question, token_spans, type_positions
from .retrieval import Passage
from .safety import is_instruction
from .text import content_stems

ABSTENTION = {
    "fr": "Je n'ai pas trouvé cette information dans les documents.",
    "en": "I could not find this information in the documents.",
}
_GENITIVES = frozenset({"de", "du", "des", "d", "of"})
_LEADING_CONNECTOR = re.compile(
    r"^(cependant|toutefois|néanmoins|par ailleurs|en outre|de plus|ainsi|alors|mais|et|or|"
    r"however|moreover|furthermore|also|and|but)\s*,?\s+", re.IGNORECASE)


@dataclass(frozen=True)
class Citation:
    number: int
    text: str  # the cited passage, verbatim: source_text[start:end]
    document: str
    title: str
    source: str
    section: str
    start: int
    end: int
    score: float
    highlights: tuple[tuple[int, int], ...] = ()  # offsets of the cited sentences in the source
    page: int | None = None  # PDF page of the passage
    url: str | None = None  # the document's web address, when its metadata gives one

    @property
    def quotes(self) -> list[str]:
        """The cited sentences themselves."""
        return [self.text[a - self.start:b - self.start] for a, b in self.highlights]

    def to_dict(self) -> dict:
        data = asdict(self)
        data["highlights"] = [list(h) for h in self.highlights]
        data["quotes"] = self.quotes
        return data


@dataclass(frozen=True)
class Answer:
    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    query: str  # the standalone query that was searched
    question: str
    language: str
    engine: str
    timings: dict = field(default_factory=dict)  # milliseconds per stage
    retrieved: tuple[Passage, ...] = ()
    notices: tuple[str, ...] = ()  # e.g. "question truncated"
    spans: tuple[tuple[int, int], ...] = ()  # the answer itself inside ``text`` (a date, a name...)
    confidence: float | None = None  # calibrated probability that the corpus answers (calibrated scorer)
    conversational: bool = False  # a reply to a greeting, thanks or a request for help: nothing was searched

    @property
    def markdown(self) -> str:
        """``text`` with the answer spans in bold (``**240**``)."""
        out, cursor = [], 0
        for start, end in self.spans:
            out += [self.text[cursor:start], "**", self.text[start:end], "**"]
            cursor = end
        return "".join(out) + self.text[cursor:]

    def to_dict(self) -> dict:
        return {
            "text": self.text, "citations": [c.to_dict() for c in self.citations],
            "abstained": self.abstained, "query": self.query, "question": self.question,
            "language": self.language, "engine": self.engine, "timings": dict(self.timings),
            "retrieved": [p.to_dict() for p in self.retrieved], "notices": list(self.notices),
            "spans": [list(s) for s in self.spans], "markdown": self.markdown, "confidence": self.confidence,
            "conversational": self.conversational,
        }


@dataclass(frozen=True)
class Unit:
    """What an answer quotes: one sentence, or a whole enumeration, scored against the question."""

    sentences: tuple[Sentence, ...]
    score: float
    passage: Passage

    @property
    def is_list(self) -> bool:
        return len(self.sentences) > 1


@dataclass(frozen=True)
class Evidence:
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


class ExtractiveAnswerer:
    """Chooses the sentences that answer, or abstains."""

    name = "extractive"

    def __init__(self, index: Index, embedder: Embedder, abstain_threshold: float = 0.5,
                 max_sentences: int = 3, lexical_weight: float = 0.15, heading_weight: float = 0.5,
                 passage_weight: float = 0.3, type_window: int = 12, name_window: int = 6,
                 unmatched_min_similarity: float = 0.86, cross_lingual_min_similarity: float = 0.785, alternatives_margin: float = 0.05,
                 extra_margin: float = 0.03, max_chars: int = 0) -> None:
        self.index, self.embedder = index, embedder
        self.abstain_threshold, self.max_sentences = abstain_threshold, max_sentences
        self.lexical_weight, self.heading_weight, self.passage_weight = lexical_weight, heading_weight, passage_weight
        self.type_window, self.name_window = type_window, name_window
        self.unmatched_min_similarity = unmatched_min_similarity
        self.cross_lingual_min_similarity = cross_lingual_min_similarity
        self.alternatives_margin, self.extra_margin = alternatives_margin, extra_margin
        self.max_chars = max_chars  # > 0: neighbours are added only while the answer stays this short
        # A sentence that gives the assistant orders is neither an answer nor part of what the corpus knows.
        self._instructions = frozenset(s.id for s in index.sentences if is_instruction(s.text))
        self._stems = [frozenset() if s.id in self._instructions else frozenset(content_stems(s.text))
                       for s in index.sentences]
        self._heading_stems = {c.id: frozenset(content_stems(c.context_header)) for c in index.chunks}
        frequency = Counter(t for stems in self._stems for t in stems)
        n = len(self._stems)
        self._idf = {t: math.log(1 + n / df) for t, df in frequency.items()}
        self._unknown_idf = math.log(1 + n / 0.5)
        # Words in most sentences (the country, the organisation) locate nothing.
        self._common = frozenset(t for t, df in frequency.items() if df / n > 0.3)
        self._vocabulary = _Vocabulary(frozenset(frequency).union(*self._heading_stems.values()))
        self._sentence_vocabulary = _Vocabulary(frozenset(frequency))

    # -- evidence -------------------------------------------------------------------------
    def _coverage(self, query_stems: frozenset[str], stems: frozenset[str]) -> float:
        query_stems = query_stems - self._common  # words in most sentences tell nothing apart
        total = sum(self._idf.get(t, self._unknown_idf) for t in query_stems)
        return sum(self._idf.get(t, 0.0) for t in query_stems & stems) / total if total else 0.0

    def gather(self, question: str, query: str, passages: list[Passage]) -> Evidence:
        profile = profile_question(question)
        query_stems = frozenset(content_stems(query))
        anchors = frozenset(t for t in query_stems if t not in self._common and not is_framing(t))
        vector = self.embedder.embed_query(query)
        norm = 1 + self.passage_weight + self.heading_weight

        def combine(dense: float, lexical: float, heading: float, passage: Passage) -> float:
            return round((dense + self.lexical_weight * lexical + self.heading_weight * heading
                          + self.passage_weight * passage.dense_score) / norm, 6)

        units, best_similarity = [], 0.0
        for passage in passages:
            chunk = self.index.chunk_by_id[passage.chunk_id]
            heading = float(self.index.heading_vectors[self.index.chunk_position[chunk.id]] @ vector)
            sentences = tuple(s for s in chunk.sentences if s.id not in self._instructions)
            for sentence in sentences:
                position = self.index.sentence_position[sentence.id]
                dense = float(self.index.sentence_vectors[position] @ vector)
                best_similarity = max(best_similarity, dense)
                lexical = self._coverage(query_stems, self._stems[position])
                units.append(Unit((sentence,), combine(dense, lexical, heading, passage), passage))
            if profile.wants_list:  # a plural question may be answered by a whole enumeration
                for items in enumerations(sentences):
                    stems = frozenset().union(self._heading_stems[chunk.id],
                                              *(self._stems[self.index.sentence_position[i.id]] for i in items))
                    alone = len(items) == len(chunk.sentences)  # then the passage vector is the list's
                    dense = passage.dense_score if alone else max(
                        float(self.index.sentence_vectors[self.index.sentence_position[i.id]] @ vector) for i in items)
                    units.append(Unit(items, combine(dense, self._coverage(query_stems, stems), heading, passage),
                                      passage))
        units.sort(key=lambda unit: -unit.score)
        shared = sum(1 for t in query_stems if not is_framing(t) and self._vocabulary.knows(t))
        known = frozenset(a for a in anchors if self._sentence_vocabulary.knows(a))
        return Evidence(question, query, profile, anchors, tuple(units), best_similarity, shared, known)

    # -- checks ---------------------------------------------------------------------------
    def _holds_fact(self, evidence: Evidence, unit: Unit) -> bool:
        return any(self._sentence_holds_fact(evidence, sentence) for sentence in unit.sentences)

    def _sentence_holds_fact(self, evidence: Evidence, sentence: Sentence) -> bool:
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
    def on_topic(self, evidence: Evidence) -> bool:
        """Off-topic questions still find a "best" sentence: dense scores are never low here.
        A question is on topic when it shares words with the corpus, or, without any, when its
        best sentence is very close (calibrated separately across languages, where words cannot match)."""
        if evidence.shared_words:
            return True
        bar = self.unmatched_min_similarity if evidence.profile.language == "fr" else self.cross_lingual_min_similarity
        return evidence.best_similarity >= bar

    def primary(self, evidence: Evidence) -> Unit | None:
        """What the answer would quote first, before the score threshold: the best-scored unit
        (or one close to it) that holds a fact of the asked kind, on an on-topic question."""
        if not evidence.candidates or not self.on_topic(evidence):
            return None
        best = evidence.candidates[0].score
        return next((unit for unit in evidence.candidates
                     if unit.score >= best - self.alternatives_margin and self._holds_fact(evidence, unit)), None)

    def select(self, evidence: Evidence) -> list[Unit]:
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

    # -- composition ----------------------------------------------------------------------
    def answer(self, question: str, query: str, passages: list[Passage]) -> Answer:
        started = time.perf_counter()
        evidence = self.gather(question, query, passages)
        units = self.select(evidence)
        if not units:
            return self.abstain(evidence, passages, started)
        return self.compose(evidence, passages, extractive_pieces(units), started)

    def abstain(self, evidence: Evidence, passages: list[Passage], started: float, engine: str | None = None,
                notices: tuple[str, ...] = ()) -> Answer:
        language = evidence.profile.language
        return Answer(text=ABSTENTION[language], citations=(), abstained=True, query=evidence.query,
                      question=evidence.question, language=language, engine=engine or self.name,
                      timings={"answer_ms": _ms(started)}, retrieved=tuple(passages), notices=notices)

    def compose(self, evidence: Evidence, passages: list[Passage], pieces: list[tuple[str, list[Unit]]],
                started: float, engine: str | None = None, notices: tuple[str, ...] = ()) -> Answer:
        """An answer from (text, units it cites) pieces: markers numbered by first use, one citation
        per passage, the cited sentences highlighted."""
        numbers: dict[str, int] = {}
        highlights: dict[str, set[tuple[int, int]]] = {}
        by_chunk: dict[str, Unit] = {}
        rendered = []
        for text, units in pieces:
            marks = []
            for unit in units:
                chunk_id = unit.passage.chunk_id
                number = numbers.setdefault(chunk_id, len(numbers) + 1)
                highlights.setdefault(chunk_id, set()).update((s.start, s.end) for s in unit.sentences)
                by_chunk.setdefault(chunk_id, unit)
                if number not in marks:
                    marks.append(number)
            markers = "".join(f"[{n}]" for n in marks)
            rendered.append(f"\n{text} {markers}\n" if text.startswith("- ") else f"{text} {markers}")
        citations = tuple(
            Citation(number=number, text=by_chunk[cid].passage.text, document=by_chunk[cid].passage.document,
                     title=by_chunk[cid].passage.title, source=by_chunk[cid].passage.source,
                     section=by_chunk[cid].passage.section, start=by_chunk[cid].passage.start,
                     end=by_chunk[cid].passage.end, score=by_chunk[cid].score,
                     highlights=tuple(sorted(highlights[cid])), page=by_chunk[cid].passage.page,
                     url=by_chunk[cid].passage.url)
            for cid, number in numbers.items()
        )
        text = re.sub(r"\n{3,}", "\n\n", " ".join(rendered)).strip()
        text = re.sub(r" *\n *", "\n", text)
        return Answer(text=text, citations=citations, abstained=False, query=evidence.query,
                      question=evidence.question, language=evidence.profile.language, engine=engine or self.name,
                      timings={"answer_ms": _ms(started)}, retrieved=tuple(passages), notices=notices)

    def stream(self, question: str, query: str, passages: list[Passage]) -> Iterator[str | Answer]:
        answer = self.answer(question, query, passages)
        yield answer.text
        yield answer


def unit_text(unit: Unit) -> str:
    """How a unit reads in an answer: the sentence (leading connector trimmed) or the list."""
    if unit.is_list:
        return "\n".join(f"- {s.text}" for s in unit.sentences)
    return _trim_connector(unit.sentences[0].text)


def reading_order(units: list[Unit]) -> list[Unit]:
    return sorted(units, key=lambda unit: (unit.passage.source, unit.sentences[0].start))


def extractive_pieces(units: list[Unit]) -> list[tuple[str, list[Unit]]]:
    """The units in reading order, each quoting itself."""
    return [(unit_text(unit), [unit]) for unit in reading_order(units)]


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


def _trim_connector(sentence: str) -> str:
    trimmed = _LEADING_CONNECTOR.sub("", sentence, count=1)
    if trimmed is sentence or not trimmed:
        return sentence
    return trimmed[0].upper() + trimmed[1:]


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 2)
