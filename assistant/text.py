"""Text normalisation shared by every stage: accent folding, word analysis, language guess."""

from __future__ import annotations

import re
import unicodedata
from functools import lru_cache

_QUOTES = str.maketrans({"’": "'", "‘": "'", "«": '"', "»": '"', "“": '"', "”": '"'})
_WORD = re.compile(r"\w+", re.UNICODE)


def fold_accents(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return unicodedata.normalize("NFC", "".join(c for c in decomposed if not unicodedata.combining(c)))


def normalize_for_match(text: str, fold: bool = False) -> str:
    """The shared eval-format matching rule: NFKC, ASCII quotes, one space, casefold (+ accents)."""
    text = unicodedata.normalize("NFKC", text).translate(_QUOTES)
    text = " ".join(text.split()).casefold()
    return fold_accents(text) if fold else text


@lru_cache(maxsize=4)
def _stemmer(language: str):
    import Stemmer

    return Stemmer.Stemmer(language)


@lru_cache(maxsize=4)
def stopwords(language: str = "french") -> frozenset[str]:
    """NLTK's stop-word list (shipped inside llama-index-core), accents folded."""
    from pathlib import Path

    import llama_index.core

    base = Path(llama_index.core.__file__).parent / "_static" / "nltk_cache" / "corpora" / "stopwords"
    words = (base / language).read_text(encoding="utf-8").split() + _EXTRA_STOPWORDS.get(language, [])
    return frozenset(fold_accents(w.casefold()) for w in words)


# Function words NLTK's lists lack (adverbs of time and degree, "aujourd'hui" split in two).
_EXTRA_STOPWORDS = {
    "french": ("aujourd hui ainsi alors aussi bien car cela ceci comme donc ici puis tout tous toute toutes "
               "très trop peu plus moins déjà encore jamais toujours souvent parfois maintenant hier demain "
               "quoi dont chez selon sans sous vers via afin").split(),
}


@lru_cache(maxsize=4)
def function_words(language: str = "french") -> frozenset[str]:
    """The language's stop words and English ones (questions may be English, the corpus French)."""
    return stopwords(language) | stopwords("english")


def words(text: str) -> list[str]:
    """Lower-cased, accent-folded word tokens (elisions split: l'accord -> l, accord)."""
    return _WORD.findall(fold_accents(text.casefold()))


def token_stems(text: str, language: str = "french") -> list[str | None]:
    """One entry per word token (``\\w+``) of ``text``: its accent-folded stem, or None for stop
    words and one-letter tokens. Positions line up with ``re.finditer(r"\\w+", text)``.

    Stemmed before folding: the French stemmer reads accents (« présidée » and « présidé » share
    « présid », their folded forms do not)."""
    stop = function_words(language)
    tokens = _WORD.findall(text.casefold())
    keep = [len(w) > 1 and fold_accents(w) not in stop for w in tokens]
    stems = iter(_stemmer(language).stemWords([w for w, k in zip(tokens, keep) if k]))
    return [fold_accents(next(stems)) if k else None for k in keep]


def content_stems(text: str, language: str = "french") -> list[str]:
    """Accent-folded stems of the words that carry meaning (stop words and one-letter tokens removed)."""
    return [stem for stem in token_stems(text, language) if stem]


_ENGLISH_MARKERS = frozenset(
    "the what who when where which why how is are was were did does do of and to in for with "
    "by from has have had about its their this that".split()
)
_FRENCH_MARKERS = frozenset(
    "le la les des du de un une est sont qui que quoi quel quelle quels quelles quand ou "
    "comment pourquoi combien et au aux dans pour par avec sur ce cette ces il elle ils a "
    "ont été l d qu".split()
)


@lru_cache(maxsize=1)
def _exclusive_words() -> dict[str, frozenset[str]]:
    french, english = stopwords("french"), stopwords("english")
    return {"fr": (french - english) | _FRENCH_MARKERS - _ENGLISH_MARKERS,
            "en": (english - french) | _ENGLISH_MARKERS - _FRENCH_MARKERS}


def language_evidence(text: str) -> dict[str, int]:
    """How many words of ``text`` belong only to French, only to English (function words)."""
    tokens = words(text)
    return {language: sum(t in vocabulary for t in tokens) for language, vocabulary in _exclusive_words().items()}


def guess_language(text: str) -> str:
    """'en' or 'fr' (the corpus language wins ties): enough to pick the abstention sentence."""
    evidence = language_evidence(text)
    return "en" if evidence["en"] > evidence["fr"] else "fr"


def require_utf8(text: str, what: str) -> None:
    """ValueError when ``text`` cannot be written as UTF-8 (a lone surrogate: undecodable bytes on a
    command line, a broken client): one clear sentence instead of a tokenizer traceback later."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(f"{what} contient un caractère invalide (position {exc.start}) : "
                         "texte UTF-8 attendu.") from None
