"""Grounded generation: the prompt given to a language model, and the checks on what it wrote.

The model is never trusted. After generation the program verifies that every ``[n]`` refers to a
given excerpt, that every sentence is supported by what it cites (in the corpus language, every
meaningful word and every counted number comes from it; in another language, a measured support
cosine and the numbers), that list items are named whole, that nothing factual is left uncited,
that the answer is in the question's language and is not an echo of the prompt. What fails is not
shown: the engine falls back to the extractive answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import numpy as np

from .chunking import sentence_spans
from .embeddings import Embedder
from .text import content_stems, function_words, language_evidence, words

SYSTEM_PROMPT = (
    "Tu es l'assistant du programme Mali d'Interpeace. Tu réponds uniquement à partir des extraits "
    "numérotés fournis, en une à trois phrases courtes. Reprends les mots des extraits, pas ceux de la "
    "question. Termine chaque phrase par le numéro de l'extrait "
    "qui la justifie entre crochets, par exemple [1]. N'ajoute aucune information absente des extraits."
)
CORPUS_LANGUAGE = "fr"
LANGUAGE_NAMES = {"fr": "français", "en": "anglais"}
# A second try when the model answered an English question in French (it copies the excerpts):
# the instruction in the question's own language is followed more often.
INSIST = {"en": "Answer in English, with the excerpt number in brackets."}
CONDENSE_PROMPT = (
    "Réécris la dernière question de l'utilisateur pour qu'elle se comprenne sans la conversation : "
    "remplace les pronoms par ce qu'ils désignent. Réponds seulement par la question réécrite."
)

_MARKER_VARIANTS = re.compile(
    r"\[\s*(?:source|extrait|excerpt|passage|document|doc)?\s*(\d+(?:\s*[,;/]\s*\d+)*)\s*\]"
    r"|【\s*(\d+)\s*】|\((?:source|extrait)\s*(\d+)\)", re.IGNORECASE)
_MARKER = re.compile(r"\[(\d+)\]")
_ECHO_LINE = re.compile(r"^\s*(extraits?|sources?|excerpts?|question)\s*(\d+\s*)?:", re.IGNORECASE)
_ANSWER_LABEL = re.compile(r"^\s*(réponse|answer)\s*:\s*", re.IGNORECASE)
# A number, thousands groups included ("5 000"), but not two numbers in a row ("15, 2022").
_NUMBER = re.compile(r"\d{1,3}(?:[ \u00a0\u202f.,]\d{3})+(?!\d)|\d+")


def build_messages(question: str, excerpts: list[str], language: str, insist: bool = False) -> list[dict[str, str]]:
    """Fixed system prompt first (llama.cpp reuses its cached prefix), then evidence and question."""
    numbered = "\n".join(f"[{i}] {' '.join(text.split())}" for i, text in enumerate(excerpts, start=1))
    instruction = f"Réponds en {LANGUAGE_NAMES.get(language, language)}."
    if insist and language in INSIST:
        instruction = INSIST[language]
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": f"Extraits :\n{numbered}\n\nQuestion : {question}\n{instruction}"}]


def condense_messages(question: str, history: list[dict[str, str]]) -> list[dict[str, str]]:
    turns = "\n".join(f"{'Utilisateur' if t['role'] == 'user' else 'Assistant'} : {_MARKER.sub('', t['content'])}"
                      for t in history[-4:])
    return [{"role": "system", "content": CONDENSE_PROMPT},
            {"role": "user", "content": f"Conversation :\n{turns}\n\nDernière question : {question}"}]


@dataclass(frozen=True)
class Statement:
    text: str  # one answer sentence, markers removed
    sources: tuple[int, ...]  # 1-based excerpt numbers that support it
    support: float


# Why an output was refused, as the reader is told (in the question's language; French otherwise).
# The detailed reason goes to the log.
REFUSALS = {
    "fr": {"empty": "le modèle n'a rien rédigé",
           "echo": "le modèle a répété la question",
           "language": "le modèle n'a pas répondu dans la langue de la question",
           "unsupported": "elle contenait des mots ou des nombres absents des passages cités",
           "list_item": "elle tronquait ou confondait les éléments d'une liste"},
    "en": {"empty": "the model wrote nothing",
           "echo": "the model repeated the question",
           "language": "the model did not answer in English",
           "unsupported": "it used words or numbers the cited passages do not contain",
           "list_item": "it cut short or mixed up the items of a list"},
}
FALLBACK_NOTICES = {
    "fr": "Réponse rédigée écartée à la vérification ({reason}) : voici les passages des documents.",
    "en": "The drafted answer failed verification ({reason}): here are the passages of the documents, in French.",
}


def refusal_notice(kind: str, language: str) -> str:
    """What the reader is told when the generated answer was replaced by the passages."""
    language = language if language in FALLBACK_NOTICES else "fr"
    return FALLBACK_NOTICES[language].format(reason=REFUSALS[language][kind])


@dataclass(frozen=True)
class Verdict:
    ok: bool
    statements: tuple[Statement, ...] = ()
    reason: str = ""  # in detail, for the log and the tests
    repairs: tuple[str, ...] = field(default_factory=tuple)  # what the program fixed
    kind: str = ""  # why it was refused: a key of REFUSALS[language]


def _digits(text: str) -> set[str]:
    """Numbers as digit strings ("5 000" and "5000" alike)."""
    return {re.sub(r"\D", "", m.group()) for m in _NUMBER.finditer(text)} - {""}


def _counted(text: str) -> set[tuple[str, str]]:
    """Each number with the word it counts, when a meaningful word follows it ("5000 Maliens")."""
    pairs = set()
    for match in _NUMBER.finditer(text):
        following = re.match(r"\s+(\w+)", text[match.end():])
        stems = content_stems(following.group(1)) if following else []
        if stems:
            pairs.add((re.sub(r"\D", "", match.group()), stems[0]))
    return pairs


class Verifier:
    """Checks a generated answer against the excerpts it was given."""

    def __init__(self, embedder: Embedder, min_support_cross_lingual: float = 0.80) -> None:
        self.embedder = embedder
        self.min_support_cross_lingual = min_support_cross_lingual  # answers in another language than the corpus

    def _clean(self, output: str, excerpts: list[str]) -> tuple[str, list[str]]:
        repairs = []
        text = _MARKER_VARIANTS.sub(lambda m: "".join(f"[{n}]" for n in re.findall(r"\d+", m.group())), output)
        if text != output:
            repairs.append("markers normalised")
        kept = []
        echoes = {" ".join(e.split()) for e in excerpts}
        for line in text.splitlines():
            line = _ANSWER_LABEL.sub("", line)
            bare = _MARKER.sub("", line).strip(" -•*")
            if _ECHO_LINE.match(line) or " ".join(bare.split()) in echoes and _MARKER.match(line.strip()):
                repairs.append("prompt echo removed")
                continue
            kept.append(line)
        return " ".join(" ".join(kept).split()), repairs

    def verify(self, output: str, excerpts: list[str], excerpt_vectors: np.ndarray, language: str,
               question: str = "", enumerations: list[tuple[str, ...]] | None = None) -> Verdict:
        """``enumerations``: per excerpt, the list items it is made of (names of projects, ...), if any."""
        text, repairs = self._clean(output, excerpts)
        if not _MARKER.sub("", text).strip():
            return Verdict(False, reason="empty output", kind="empty")
        asked = set(content_stems(question))
        if question and set(content_stems(_MARKER.sub("", text))) <= asked:
            return Verdict(False, reason="the question repeated, nothing from the excerpts", kind="echo")
        pieces = _sentences_with_markers(text)
        if not pieces:
            return Verdict(False, reason="empty output", kind="empty")
        wrong = _wrong_language(" ".join(p for p, _ in pieces), excerpts, language)
        if wrong:
            return Verdict(False, reason=f"answer in '{wrong}', question in '{language}'", kind="language")
        vectors = self.embedder.embed_passages([p for p, _ in pieces])
        support = vectors @ excerpt_vectors.T  # sentence x excerpt cosine
        statements = []
        for row, (sentence, markers) in enumerate(pieces):
            valid = [m for m in dict.fromkeys(markers) if 1 <= m <= len(excerpts)]
            if len(valid) != len(markers):
                repairs.append(f"marker out of range dropped ({markers})")
            cited = [m for m in valid if self._supports(sentence, [excerpts[m - 1]], support[row, m - 1], language)]
            if not cited and len(valid) > 1 and self._supports(  # one sentence drawing on two excerpts
                    sentence, [excerpts[m - 1] for m in valid], max(support[row, m - 1] for m in valid), language):
                cited = valid
            if not cited:  # uncited or wrongly cited: attach to the excerpt that supports it, if any
                best = int(np.argmax(support[row])) + 1
                if not self._supports(sentence, [excerpts[best - 1]], support[row, best - 1], language):
                    return Verdict(False, reason=f"unsupported sentence: {sentence!r}", repairs=tuple(repairs),
                                   kind="unsupported")
                cited = [best]
                repairs.append(f"marker attached by support ({best})")
            statements.append(Statement(sentence, tuple(cited), float(max(support[row, m - 1] for m in cited))))
        if language == CORPUS_LANGUAGE and enumerations:
            cut = _cut_item(" ".join(s.text for s in statements), asked, enumerations)
            if cut:
                return Verdict(False, reason=f"list item cut short or missing: {cut!r}", repairs=tuple(repairs),
                               kind="list_item")
        return Verdict(True, tuple(statements), repairs=tuple(repairs))

    def _supports(self, sentence: str, cited: list[str], cosine: float, language: str) -> bool:
        if not _digits(sentence) <= set().union(*(_digits(text) for text in cited)):
            return False  # a number the excerpts do not state
        if language != CORPUS_LANGUAGE:  # words cannot be compared across languages: the cosine has to do
            return cosine >= self.min_support_cross_lingual
        # Same language: every meaningful word must come from what the sentence cites. A small model
        # that borrows the question's wording ("sur requête de ...") fills its frame with a wrong
        # entity while staying close in meaning; measured on the dev set, such borrowed words marked
        # most of its wrong answers, and a cosine threshold could not tell them from right ones.
        if not _counted(sentence) <= set().union(*(_counted(text) for text in cited)):
            return False  # a stated number counting something else ("5000 régions" for "5000 Maliens")
        said, known = set(content_stems(sentence)), set().union(*(content_stems(text) for text in cited))
        return bool(said) and said <= known


def _wrong_language(answer: str, excerpts: list[str], language: str) -> str | None:
    """The language the answer is written in, when it is not the question's.

    Names copied from the excerpts (« Institut Malien de Recherche-Action pour la Paix ») are
    quotations, not the answer's language: they are left out of the count. An answer that is
    nothing but a copy of the excerpts is in their language."""
    own = language_evidence(_without_quotations(answer, excerpts))
    other = max((lang for lang in own if lang != language), key=own.get, default=None)
    if other and own[other] > own.get(language, 0):
        return other
    whole = language_evidence(answer)
    if language != CORPUS_LANGUAGE and not own.get(language) and whole.get(CORPUS_LANGUAGE) \
            and not _is_name(answer):
        return CORPUS_LANGUAGE
    return None


def _is_name(text: str) -> bool:
    """A short answer that is a name (« Autoportrait du Mali »): names are not translated."""
    tokens = re.findall(r"\w+", text)
    return 0 < len(tokens) <= 8 and tokens[0][:1].isupper() and words(tokens[0])[0] not in function_words()


def _without_quotations(answer: str, excerpts: list[str]) -> str:
    """The answer without its runs of two words or more found word for word in an excerpt."""
    tokens = words(answer)
    sources = [f" {' '.join(words(e))} " for e in excerpts]
    kept, i = [], 0
    while i < len(tokens):
        j = i + 1
        while j < len(tokens) and any(f" {' '.join(tokens[i:j + 1])} " in src for src in sources):
            j += 1
        if j - i >= 2:
            i = j  # a quotation: skipped
        else:
            kept.append(tokens[i])
            i += 1
    return " ".join(kept)


def _sentences_with_markers(text: str) -> list[tuple[str, list[int]]]:
    """The answer's sentences without their markers, each with the excerpt numbers it gives."""
    pieces: list[tuple[str, list[int]]] = []
    for start, end in sentence_spans(text):
        sentence = text[start:end]
        markers = [int(n) for n in _MARKER.findall(sentence)]
        bare = re.sub(r"\s+([.,])", r"\1", " ".join(_MARKER.sub("", sentence).split()))  # "Algérie [1]."
        if not re.search(r"\w", bare):  # markers alone: they belong to the previous sentence
            if pieces:
                pieces[-1][1].extend(markers)
            continue
        pieces.append((bare, markers))
    return pieces


def _cut_item(answer: str, asked: set[str], enumerations: list[tuple[str, ...]]) -> str | None:
    """A list item the answer gets wrong, if any: items are names (of projects, obstacles, ...), so
    one is named whole or not at all, and the item the question points to must be named.

    An item counts as named when the answer shares with it two words the question did not bring;
    the question points to the one item sharing the most words (two at least) with it."""
    said = set(content_stems(answer))
    items = [(item, set(content_stems(item))) for group in enumerations for item in group]
    for item, stems in items:
        if len(stems & (said - asked)) >= 2 and not stems <= said:
            return item
    pointed = sorted(((len(stems & asked), item, stems) for item, stems in items), key=lambda t: -t[0])
    if pointed and pointed[0][0] >= 2 and (len(pointed) == 1 or pointed[1][0] < pointed[0][0]):
        _, item, stems = pointed[0]
        if not stems <= said:
            return item
    return None
