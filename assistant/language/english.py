"""English: questions may be asked in it (the corpus is French)."""

from __future__ import annotations

from functools import lru_cache

from .base import LanguagePack, packs


@packs.register("en")
@lru_cache(maxsize=1)
def english() -> LanguagePack:
    return LanguagePack(
        code="en", spacy_model="", stemmer="english", stopwords="english", text_search="english",
        question_words=frozenset("what who whom whose when where which why how".split()),
        months=frozenset("january february march april may june july august september october november "
                         "december".split()),
        days=frozenset("monday tuesday wednesday thursday friday saturday sunday".split()),
        light_verbs=frozenset("be have do go can must".split()),
        continuations=frozenset(["and then", "then", "what next", "what happened next", "then what", "next",
                                  "and after that", "what happened after that"]),
        strings={
            "abstention": "I could not find this information in the documents.",
            "unsure": "I am not certain; here is the closest passage:",
        })
