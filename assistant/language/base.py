"""The language pack's shape and its registry (see the package docstring)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..registry import Registry


@dataclass(frozen=True)
class LanguagePack:
    code: str  # "fr", "en"
    spacy_model: str  # a spaCy pipeline installed as a package ("" : none)
    stemmer: str  # PyStemmer's name for the language
    stopwords: str  # NLTK's list name
    text_search: str  # PostgreSQL's text-search configuration
    question_words: frozenset[str]  # wh-words (folded)
    months: frozenset[str]
    days: frozenset[str]  # the days of the week
    light_verbs: frozenset[str]  # verbs that carry no topic (être, avoir...)
    continuations: frozenset[str] = frozenset()  # « Et ensuite ? »: the story goes on (folded, no punctuation)
    kind_of_noun: dict[str, str] = field(default_factory=dict)  # « quel X »: X's lemma -> the kind asked
    strings: dict[str, str] = field(default_factory=dict)  # what users read, by key


packs: Registry = Registry("languages", "Langue", builtins=("assistant.language.french", "assistant.language.english"))


def pack(code: str) -> LanguagePack:
    """The pack of ``code`` (French for any language without one: the corpus's)."""
    return packs.get(code if code in packs else "fr")()
