"""Languages as data: a ``LanguagePack`` per language holds what the code would otherwise spell
out in literals — the spaCy pipeline, the stemmer and stop-word list, PostgreSQL's text-search
configuration, question words, month names, the nouns that say what a « quel X » question asks for,
and the sentences users read. Packs are registered by their code (``packs``); French is the
corpus's language, English is read in questions."""

from .base import LanguagePack, pack, packs

__all__ = ["LanguagePack", "pack", "packs"]
