"""An index held in this process's memory (``vector_store = "memory"``): nothing written to disk,
gone when the process exits. For fast unit tests and tiny corpora.

Dense search is an exact cosine over every passage (one matrix product, numpy); lexical search a
plain BM25 (Lucene's variant, k1 1.5, b 0.75, as bm25s and the PostgreSQL store compute it) over
the words of ``bm25_text`` (two characters or more, French stop words dropped, French stems; a
query's English stop words are dropped too, as the files store does).
Locations of the same name share what was published, like processes sharing an index folder.
"""

from __future__ import annotations

import math
import re
import threading
from collections import Counter
from pathlib import Path

import numpy as np

from ..chunking import Chunk
from ..config import Settings
from ..corpus import Document
from ..embeddings import Embedder
from ..errors import AssistantError
from ..text import function_words, stopwords
from .base import Embedded, Index, locations
from .files import bm25_text

_K1, _B = 1.5, 0.75
_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # bm25s's token pattern
_published: dict[str, Index] = {}  # location name -> the index published there (its version counts up)
_published_lock = threading.Lock()


class MemorySearch:
    """Exact cosine and BM25 over one published index's passages, in memory."""

    def __init__(self, chunks: list[Chunk], chunk_vectors: np.ndarray, name: str) -> None:
        import Stemmer

        self._ids = [c.id for c in chunks]
        self._vectors = chunk_vectors
        self._name = name
        self._stemmer, self._stemmer_lock = Stemmer.Stemmer("french"), threading.Lock()  # not re-entrant
        self._postings: dict[str, list[tuple[int, int]]] = {}  # term -> (passage position, count)
        self._lengths = []
        for position, chunk in enumerate(chunks):
            terms = self._terms(chunk.context_header + chunk.text, stopwords("french"))
            self._lengths.append(len(terms))
            for term, count in Counter(terms).items():
                self._postings.setdefault(term, []).append((position, count))
        self._average = max(sum(self._lengths) / len(self._lengths), 1.0) if self._lengths else 1.0

    def _terms(self, text: str, stop: frozenset[str]) -> list[str]:
        words = [w for w in _TOKEN.findall(bm25_text(text)) if w not in stop]
        with self._stemmer_lock:
            return self._stemmer.stemWords(words)

    def dense_search(self, vector: np.ndarray, k: int) -> dict[str, float]:
        if not self._ids or k <= 0:
            return {}
        cosines = self._vectors @ np.asarray(vector, dtype=np.float32)
        best = np.argsort(-cosines, kind="stable")[:k]  # equal cosines: index order
        return {self._ids[p]: float(cosines[p]) for p in best}

    def lexical_search(self, query: str, k: int) -> dict[str, float]:
        n = len(self._ids)
        scores: dict[int, float] = {}
        for term in dict.fromkeys(self._terms(query, function_words("french"))):
            postings = self._postings.get(term, [])
            if not postings:
                continue
            idf = math.log(1 + (n - len(postings) + 0.5) / (len(postings) + 0.5))
            for position, tf in postings:
                norm = tf + _K1 * (1 - _B + _B * self._lengths[position] / self._average)
                scores[position] = scores.get(position, 0.0) + idf * tf / norm
        best = sorted((p for p, s in scores.items() if s > 0), key=lambda p: (-scores[p], p))[:max(k, 0)]
        return {self._ids[p]: scores[p] for p in best}

    def published_version(self) -> str:
        with _published_lock:
            published = _published.get(self._name)
        return published.version if published is not None else "0"


@locations.register("memory")
class MemoryLocation:
    """A named place in this process's memory; ``from_settings`` names it after ``index_dir``."""

    def __init__(self, name: str) -> None:
        self.name = name

    @classmethod
    def from_settings(cls, settings: Settings) -> "MemoryLocation":
        return cls(str(settings.index_dir))

    def describe(self) -> str:
        return f"la mémoire ({self.name})"

    def prepare(self) -> None:
        pass  # nothing can fail to be written

    def discard(self) -> None:
        pass  # nothing is kept before ``publish``

    def read_manifest(self) -> dict | None:
        with _published_lock:
            published = _published.get(self.name)
        return None if published is None else published.manifest

    def load(self, embedder: Embedder) -> Index:
        with _published_lock:
            published = _published.get(self.name)
        if published is None:
            raise AssistantError(f"Aucun index dans {self.describe()} : lancez `assistant index`.")
        return published

    def publish(self, built: Embedded, documents: list[Document], embedder: Embedder,
                incremental: bool) -> Index:
        search = MemorySearch(built.chunks, built.chunk_vectors, self.name)
        built.finished()
        with _published_lock:
            previous = _published.get(self.name)
            version = str(int(previous.version) + 1 if previous is not None else 1)
            index = _published[self.name] = Index.from_embedded(built, Path(self.name), search, version)
        return index

    def forget(self) -> None:
        """Nothing published here any more (what was loaded stays usable)."""
        with _published_lock:
            _published.pop(self.name, None)
