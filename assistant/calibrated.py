"""The calibrated extractive engine: the answer scorer of ``evidence.py`` picks what to quote.

Same answers' shape as the rule-based engine (``answering.py``), whose composition it reuses:
the best candidate (a sentence, or an enumeration for a plural question), or an abstention when
the calibrated probability that the corpus answers is below the fitted threshold. The retrieved
passages come back reranked (the one holding the quoted sentence first), and the fact the question
asks for is marked inside the quoted sentence (``Answer.spans``, ``Answer.markdown``).
Chosen with the setting ``answer_scorer = "calibrated"``.
"""

from __future__ import annotations

import re
import time

from .answer_types import FACT_OF_TYPE, plain, question_words, sentence_facts
from .answering import ABSTENTION, Answer, ExtractiveAnswerer, Unit, extractive_pieces, _ms
from .embeddings import Embedder
from .evidence import Evidence, EvidenceScorer
from .index import Index
from .retrieval import Passage

_PARTICLES = frozenset("de d du des la le von van der di da del y".split())


class CalibratedAnswerer(ExtractiveAnswerer):
    """Quotes the best-scored candidate, or abstains."""

    def __init__(self, index: Index, embedder: Embedder, scorer: EvidenceScorer, max_sentences: int = 1) -> None:
        # The rule-based engine's scoring state is not needed: only its composition is reused.
        self.index, self.embedder, self.scorer, self.max_sentences = index, embedder, scorer, max_sentences

    def gather(self, question: str, query: str, passages: list[Passage]) -> Evidence:  # type: ignore[override]
        return self.scorer.gather(question, query, passages)

    def select(self, evidence: Evidence) -> list[Unit]:  # type: ignore[override]
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

    def answer(self, question: str, query: str, passages: list[Passage]) -> Answer:
        started = time.perf_counter()
        evidence = self.gather(question, query, passages)
        ranked = list(evidence.passages)
        units = self.select(evidence)
        if not units:
            answer = self.abstain(evidence, ranked, started)  # type: ignore[arg-type]
            return Answer(**{**answer.__dict__, "confidence": evidence.confidence})
        answer = self.compose(evidence, ranked, extractive_pieces(units), started)  # type: ignore[arg-type]
        spans = marked_spans(answer.text, [unit.sentences[0].text for unit in units], evidence)
        return Answer(**{**answer.__dict__, "spans": spans, "confidence": evidence.confidence,
                         "timings": {"answer_ms": _ms(started)}})


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


class AbstentionGate:
    """The rule-based engine's answer, withheld when the calibrated probability that the corpus
    answers is below the calibration's ``gate_threshold`` (``answer_scorer = "gated"``): the rules
    choose what to quote, the fitted answerability (which learnt from questions about absent
    documents) vetoes. The gate threshold is fitted by ``assistant calibrate`` to add at most 0.01
    false abstention to the rules' own on each calibration set."""

    def __init__(self, rules: ExtractiveAnswerer, scorer: EvidenceScorer, top_k: int) -> None:
        self.rules, self.scorer, self.top_k = rules, scorer, top_k
        self.name = rules.name

    def answer(self, question: str, query: str, passages: list[Passage]) -> Answer:
        """``passages``: the candidate pool (the calibrated features read all of it); the rules read
        the first ``top_k``, as they do alone."""
        started = time.perf_counter()
        answer = self.rules.answer(question, query, passages[:self.top_k])
        if answer.abstained:
            return answer
        evidence = self.scorer.gather(question, query, passages)
        if evidence.confidence >= self.scorer.calibration.gate_threshold:
            quoted = [q for citation in answer.citations for q in citation.quotes]
            return Answer(**{**answer.__dict__, "confidence": evidence.confidence,
                             "spans": marked_spans(answer.text, quoted, evidence)})
        return Answer(text=ABSTENTION[answer.language], citations=(), abstained=True, query=answer.query,
                      question=answer.question, language=answer.language, engine=answer.engine,
                      timings={"answer_ms": _ms(started)}, retrieved=answer.retrieved, notices=answer.notices,
                      confidence=evidence.confidence)

    def stream(self, question: str, query: str, passages: list[Passage]):
        answer = self.answer(question, query, passages)
        yield answer.text
        yield answer
