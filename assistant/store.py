"""Where passages are searched: the storage interface and its embedded implementation.

A ``Store`` answers the two searches of hybrid retrieval (dense and lexical) and says which
version of the index it serves; ``retrieval`` asks it and never reaches into it. Two
implementations: ``FilesStore`` (FAISS through llama-index + BM25 files in a build folder, the
embedded default) and ``postgres.PostgresStore`` (pgvector + French full-text search, shared by
several processes). What answering reads (passages with their phrases and vectors) is the
``index.Index`` loaded from either.
"""

from __future__ import annotations

import threading
from typing import Any, Protocol

import numpy as np

from .text import fold_accents


def bm25_text(text: str) -> str:
    """BM25 sees accent-folded text; queries are folded the same way."""
    return fold_accents(text.casefold())


class Store(Protocol):
    """Search over the passages of one published index."""

    def dense_search(self, vector: np.ndarray, k: int) -> dict[str, float]:
        """Up to ``k`` passage ids nearest to a normalised query vector -> cosine, best first."""

    def lexical_search(self, query: str, k: int) -> dict[str, float]:
        """Up to ``k`` passage ids matching the query's words -> a positive score, best first."""

    def version(self) -> str:
        """What is published now (another process may publish a newer index)."""


class FilesStore:
    """FAISS (exact inner product, through llama-index) and BM25 (bm25s, French stemmer and stop
    words, accent-folded) loaded from one build folder; read-only, safe for concurrent queries."""

    def __init__(self, vector_index: Any, bm25: Any, published: Any) -> None:
        self.vector_index, self.bm25 = vector_index, bm25
        self._published = published  # callable: the build folder ``current`` points to now
        self._dense: dict[int, Any] = {}
        self._dense_lock = threading.Lock()

    def dense_search(self, vector: np.ndarray, k: int) -> dict[str, float]:
        from llama_index.core.schema import QueryBundle

        with self._dense_lock:
            retriever = self._dense.get(k)
            if retriever is None:
                retriever = self._dense[k] = self.vector_index.as_retriever(similarity_top_k=k)
        hits = retriever.retrieve(QueryBundle(query_str="", embedding=vector.tolist()))
        return {hit.node.node_id: float(hit.score) for hit in hits}

    def lexical_search(self, query: str, k: int) -> dict[str, float]:
        """What llama-index's ``BM25Retriever.retrieve`` does (same tokens, same scores), with the
        result count passed to bm25s per call: the retriever reads it from an attribute that
        concurrent queries would otherwise have to set in turn."""
        import bm25s
        from llama_index.core.vector_stores.utils import metadata_dict_to_node

        folded = bm25_text(query)
        retriever = self.bm25
        if not folded.strip() or not retriever.corpus:
            return {}
        tokens = bm25s.tokenize(folded, stemmer=None if retriever.skip_stemming else retriever.stemmer,
                                token_pattern=retriever.token_pattern, show_progress=False)
        mask = np.array(retriever.corpus_weight_mask) if retriever.corpus_weight_mask else None
        indexes, scores = retriever.bm25.retrieve(tokens, k=min(k, len(retriever.corpus)), show_progress=False,
                                                  weight_mask=mask)
        # bm25s gives the stored node dicts when it holds the corpus, else their positions.
        return {metadata_dict_to_node(i if isinstance(i, dict) else retriever.corpus[int(i)]).node_id: float(score)
                for i, score in zip(indexes[0], scores[0]) if score > 0}

    def version(self) -> str:
        return str(self._published())
