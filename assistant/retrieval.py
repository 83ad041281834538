"""Hybrid retrieval: the store's dense (cosine) and lexical (French) searches, fused. Only the
``stores.Store`` methods are read: any location (files, PostgreSQL, memory) serves it alike."""

from __future__ import annotations

from .embeddings import Embedder
from .stores import Store
from .types import Passage

MODES = ("hybrid", "dense", "bm25")
FUSIONS = ("rrf", "weighted")


class Retriever:
    """Ranks the index's chunks for a query; one query embedding serves every stage."""

    def __init__(self, index: Store, embedder: Embedder, mode: str = "hybrid", fusion: str = "rrf",
                 rrf_k: int = 60, dense_weight: float = 0.5, candidate_pool: int = 20) -> None:
        if mode not in MODES:
            raise ValueError(f"mode must be one of {MODES}")
        if fusion not in FUSIONS:
            raise ValueError(f"fusion must be one of {FUSIONS}")
        self.index, self.embedder = index, embedder
        self.mode, self.fusion, self.rrf_k, self.dense_weight = mode, fusion, rrf_k, dense_weight
        self.pool = min(candidate_pool, index.count_passages())

    def retrieve(self, query: str, k: int = 5, mode: str | None = None) -> list[Passage]:
        mode = mode or self.mode
        vector = self.embedder.embed_query(query)
        index = self.index
        dense = index.dense_search(vector, self.pool) if mode != "bm25" else {}
        lexical = index.lexical_search(query, self.pool) if mode != "dense" else {}
        if not all(map(index.has_chunk, [*dense, *lexical])):
            # A shared store updated by another process since this index was loaded: its new
            # passages are read once this process loads that version (``Assistant`` refreshes).
            dense = {cid: score for cid, score in dense.items() if index.has_chunk(cid)}
            lexical = {cid: score for cid, score in lexical.items() if index.has_chunk(cid)}
        if mode == "dense":
            fused = dense
        elif mode == "bm25":
            fused = lexical
        elif self.fusion == "rrf":
            fused = {}
            for ranking in (dense, lexical):
                for rank, chunk_id in enumerate(sorted(ranking, key=ranking.get, reverse=True)):
                    fused[chunk_id] = fused.get(chunk_id, 0.0) + 1.0 / (self.rrf_k + rank + 1)
        else:
            top_lexical = max(lexical.values(), default=0.0) or 1.0
            fused = {cid: self.dense_weight * dense.get(cid, 0.0)
                     + (1 - self.dense_weight) * lexical.get(cid, 0.0) / top_lexical
                     for cid in set(dense) | set(lexical)}
        ranked = sorted(fused, key=lambda cid: (-fused[cid], index.position(cid)))[:k]
        passages = []
        for chunk_id in ranked:
            chunk = index.chunk(chunk_id)
            cosine = dense.get(chunk_id)
            if cosine is None:
                cosine = float(index.chunk_vector(chunk_id) @ vector)
            passages.append(Passage(chunk_id=chunk.id, text=chunk.text, document=chunk.document,
                                    title=chunk.title, source=chunk.source, section=chunk.section,
                                    start=chunk.start, end=chunk.end, score=round(fused[chunk_id], 6),
                                    dense_score=round(cosine, 6), bm25_score=round(lexical.get(chunk_id, 0.0), 6),
                                    page=chunk.page, url=chunk.url))
        return passages
