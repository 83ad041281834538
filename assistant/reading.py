"""Reading a sentence against a question with a French language pipeline (spaCy's
``fr_core_news_md``: tokens, lemmas, part of speech, dependency parse, named entities PER / LOC /
ORG / MISC), in the spirit of the feature-based reader of the SQuAD paper (Rajpurkar et al., 2016):
what the question asks for (a person, a place, an organisation, a date, a number...), its anchor
lemmas and named entities; in a candidate sentence, the tokens of the asked kind the question does
not already hold, and how close they stand to the question's anchors in the dependency tree.

The parser's output is read as features for a fitted model, never as rules: it mistakes words
(« veuillez » tagged LOC). Parses are cached by text: a corpus sentence is parsed the first time a
question reaches it, a question once.
"""

from __future__ import annotations

import math
import re
import threading
from collections import OrderedDict
from dataclasses import dataclass
from functools import lru_cache
from typing import Sequence

from .language import pack
from .text import fold_accents

_KINDS = ("person", "place", "organisation", "date", "number")
_KIND_OF_TYPE = {"name": "person", "place": "place", "date": "date", "quantity": "number"}
_CONTENT_POS = frozenset({"NOUN", "PROPN", "VERB", "ADJ", "NUM"})
_YEAR = re.compile(r"^(1\d{3}|20\d{2})$")
_FRENCH = pack("fr")  # the corpus's language: its sentences are read with its pipeline and words
_WH = frozenset(fold_accents(w) for w in _FRENCH.question_words | pack("en").question_words)
_MONTHS = _FRENCH.months
_DAYS = _FRENCH.days
_LIGHT_VERBS = _FRENCH.light_verbs
_KIND_OF_NOUN = _FRENCH.kind_of_noun

READING_FEATURES: tuple[str, ...] = (
    "r_lemma_overlap", "r_lemma_overlap_idf", "r_root_in_sentence", "r_subject_in_sentence",
    "r_expected_any", "r_expected_count", "r_expected_tree_near", "r_expected_linear_near",
    *(f"r_near_{kind}" for kind in _KINDS), "r_question_entities", "r_new_entities", "r_anchor_attached",
    "r_expected_is_new_entity", "r_sentence_tokens",
)


@dataclass(frozen=True)
class Parsed:
    """One text as the pipeline read it (token-aligned tuples)."""

    words: tuple[str, ...]  # folded, lower-cased surface forms
    lemmas: tuple[str, ...]  # lower-cased lemmas
    pos: tuple[str, ...]
    deps: tuple[str, ...]
    heads: tuple[int, ...]  # index of each token's head (the root is its own head)
    entities: tuple[tuple[int, int, str], ...]  # (first token, end token, label)
    offsets: tuple[tuple[int, int], ...] = ()  # each token's characters in the text

    def depths(self) -> list[int]:
        out = []
        for i in range(len(self.heads)):
            depth, node, seen = 0, i, 0
            while self.heads[node] != node and seen < 100:
                node, depth, seen = self.heads[node], depth + 1, seen + 1
            out.append(depth)
        return out


@dataclass(frozen=True)
class QuestionReading:
    """What a question asks for, as the reader uses it."""

    kind: str | None  # one of _KINDS, or None (any fact)
    anchors: frozenset[str]  # content lemmas (not the wh-words)
    root: str | None  # the question's main verb lemma (not a light verb)
    subject: str | None  # the lemma of the noun the question is about
    entities: tuple[str, ...]  # folded surface forms of its named entities and proper nouns


class Pipeline:
    """spaCy's French pipeline, loaded on first use, with a bounded cache of parses by text."""

    def __init__(self, model: str = _FRENCH.spacy_model, cache_size: int = 200_000) -> None:
        self.model, self.cache_size = model, cache_size
        self._nlp = None
        self._lock = threading.Lock()
        self._cache: OrderedDict[str, Parsed] = OrderedDict()

    def _load(self):
        if self._nlp is None:
            with self._lock:
                if self._nlp is None:
                    import spacy

                    self._nlp = spacy.load(self.model)
        return self._nlp

    def parse(self, text: str) -> Parsed:
        return self.parse_many([text])[0]

    def parse_many(self, texts: Sequence[str]) -> list[Parsed]:
        missing = list(dict.fromkeys(t for t in texts if t not in self._cache))
        if missing:
            nlp = self._load()
            with self._lock:  # spaCy's pipeline is not documented as thread-safe
                docs = list(nlp.pipe(missing, batch_size=64))
            for text, doc in zip(missing, docs):
                self._cache[text] = _parsed(doc)
            while len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return [self._cache[t] for t in texts]


def _parsed(doc) -> Parsed:
    return Parsed(tuple(fold_accents(t.text.casefold()) for t in doc), tuple(t.lemma_.casefold() for t in doc),
                  tuple(t.pos_ for t in doc), tuple(t.dep_ for t in doc), tuple(t.head.i for t in doc),
                  tuple((e.start, e.end, e.label_) for e in doc.ents),
                  tuple((t.idx, t.idx + len(t.text)) for t in doc))


@lru_cache(maxsize=1)
def shared_pipeline() -> Pipeline:
    return Pipeline()


def read_question(parsed: Parsed, answer_type: str | None) -> QuestionReading:
    """The question's expected kind (from the rules' answer type, else the noun after « quel »),
    anchors, main verb, subject and entities."""
    kind = _KIND_OF_TYPE.get(answer_type or "")
    for i, word in enumerate(parsed.words):
        if word in {"quel", "quelle", "quels", "quelles"}:
            for j in range(i + 1, min(i + 4, len(parsed.words))):
                if parsed.pos[j] == "NOUN":
                    kind = _KIND_OF_NOUN.get(parsed.lemmas[j], kind)
                    break
            break
    anchors = frozenset(lemma for lemma, pos, word in zip(parsed.lemmas, parsed.pos, parsed.words)
                        if pos in _CONTENT_POS and word not in _WH and lemma not in _LIGHT_VERBS and len(lemma) > 1)
    root = next((parsed.lemmas[i] for i, h in enumerate(parsed.heads)
                 if h == i and parsed.pos[i] == "VERB" and parsed.lemmas[i] not in _LIGHT_VERBS), None)
    subject = next((parsed.lemmas[i] for i, d in enumerate(parsed.deps)
                    if d.startswith("nsubj") and parsed.pos[i] in {"NOUN", "PROPN"}), None)
    entities = [" ".join(parsed.words[a:b]) for a, b, _ in parsed.entities]
    entities += [w for w, pos in zip(parsed.words, parsed.pos) if pos == "PROPN" and len(w) > 1]
    return QuestionReading(kind, anchors, root, subject, tuple(dict.fromkeys(entities)))


def _is_kind(parsed: Parsed, i: int, kind: str, labels: dict[int, str]) -> bool:
    word, pos = parsed.words[i], parsed.pos[i]
    if kind == "person":
        return labels.get(i) == "PER"
    if kind == "place":
        return labels.get(i) == "LOC"
    if kind == "organisation":
        return labels.get(i) == "ORG"
    if kind == "date":
        return (bool(_YEAR.match(word)) or parsed.lemmas[i] in _MONTHS or parsed.lemmas[i] in _DAYS
                or word in {"siecle", "siecles"})
    if kind == "number":
        return pos == "NUM" or word.isdigit()
    return False


def reading_features(question: QuestionReading, sentence: Parsed, question_words: frozenset[str],
                     anchor_weights: dict[str, float] | None = None) -> list[float]:
    """One row in READING_FEATURES order for (question, candidate sentence); ``anchor_weights``:
    each anchor lemma's weight (its IDF), computed once per question (1 each when not given)."""
    n = len(sentence.words)
    lemmas = set(sentence.lemmas)
    anchors = question.anchors
    weights = anchor_weights if anchor_weights is not None else dict.fromkeys(anchors, 1.0)
    total = sum(weights.values())
    overlap = len(anchors & lemmas) / len(anchors) if anchors else 0.0
    overlap_idf = sum(w for a, w in weights.items() if a in lemmas) / total if total else 0.0
    labels = {i: label for a, b, label in sentence.entities for i in range(a, b)}
    anchor_at = [i for i, lemma in enumerate(sentence.lemmas) if lemma in anchors]
    depths = sentence.depths() if n else []

    def tree_distance(a: int, b: int) -> int:
        seen: dict[int, int] = {}
        node, d = a, 0
        while True:
            seen[node] = d
            if sentence.heads[node] == node or d > 60:
                break
            node, d = sentence.heads[node], d + 1
        node, d = b, 0
        while node not in seen and d <= 60:
            if sentence.heads[node] == node:
                return depths[a] + depths[b] + 2  # two roots (a fragment): far
            node, d = sentence.heads[node], d + 1
        return seen.get(node, 60) + d

    def nearness(kind: str) -> tuple[int, float, float, float]:
        at = [i for i in range(n) if _is_kind(sentence, i, kind, labels) and sentence.words[i] not in question_words]
        if not at:
            return 0, 0.0, 0.0, 0.0
        tree = min((tree_distance(i, j) for i in at for j in anchor_at), default=None)
        linear = min((abs(i - j) for i in at for j in anchor_at), default=None)
        new_entity = float(any(i in labels for i in at))
        return (len(at), 1.0 / (1 + tree) if tree is not None else 0.0,
                1.0 / (1 + linear) if linear is not None else 0.0, new_entity)

    count, tree_near, linear_near, is_new_entity = nearness(question.kind) if question.kind else (0, 0.0, 0.0, 0.0)
    per_kind = [tree_near if kind == question.kind else 0.0 for kind in _KINDS]
    folded = " " + " ".join(sentence.words) + " "
    found = sum(1 for e in question.entities if f" {e} " in folded)
    question_entities = found / len(question.entities) if question.entities else 0.0
    new_entities = sum(1 for a, b, _ in sentence.entities
                       if not any(w in question_words for w in sentence.words[a:b]))
    attached = float(any(sentence.lemmas[sentence.heads[i]] in anchors or sentence.heads[i] == i
                         for i in anchor_at))
    return [overlap, overlap_idf, float(question.root in lemmas) if question.root else 0.0,
            float(question.subject in lemmas) if question.subject else 0.0,
            float(count > 0), math.log1p(count), tree_near, linear_near, *per_kind, question_entities,
            math.log1p(new_entities), attached, is_new_entity, math.log1p(n)]


def answer_span(question: QuestionReading, sentence: Parsed, question_words: frozenset[str]) -> tuple[int, int] | None:
    """Where, in the sentence, the asked fact stands: the entity (or run of number and date words)
    of the asked kind the question lacks, nearest its anchor lemmas; None when the question asks for
    no particular kind or the sentence holds none."""
    if not question.kind or not sentence.words:
        return None
    labels = {i: label for a, b, label in sentence.entities for i in range(a, b)}
    at = [i for i in range(len(sentence.words))
          if _is_kind(sentence, i, question.kind, labels) and sentence.words[i] not in question_words]
    if not at:
        return None
    anchors = [i for i, lemma in enumerate(sentence.lemmas) if lemma in question.anchors]
    best = min(at, key=lambda i: (min((abs(i - j) for j in anchors), default=0), i))
    entity = next(((a, b) for a, b, _ in sentence.entities if a <= best < b), None)
    first, end = entity if entity else (best, best + 1)
    if not entity:  # « 12 mars 2024 », « 240 millions »: the run of words of the kind around it
        while first > 0 and _is_kind(sentence, first - 1, question.kind, labels):
            first -= 1
        while end < len(sentence.words) and (_is_kind(sentence, end, question.kind, labels)
                                             or sentence.lemmas[end] in _MONTHS):
            end += 1
    return sentence.offsets[first][0], sentence.offsets[end - 1][1]
