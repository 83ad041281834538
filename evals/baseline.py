"""The plain llama-index pipeline anyone would write first, as the reference for every comparison.

``VectorStoreIndex`` over the corpus documents with llama-index's default ``SentenceSplitter``,
the same embedding model as the assistant, dense top-2; the answer is the top passage, cited as
[1]; it never abstains and ignores the conversation history (a naive pipeline).
"""

from __future__ import annotations

import time
from typing import Any

from assistant import Answer, Citation, Passage

NAME = "llama-index-baseline"


class LlamaIndexBaseline:
    """Duck-types ``Assistant.ask`` so the eval runner treats it like any configuration."""

    name = NAME

    def __init__(self, assistant: Any, top_k: int = 2, chunk_size: int | None = None,
                 chunk_overlap: int | None = None) -> None:
        from llama_index.core import Document as LlamaDocument
        from llama_index.core import VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter

        from assistant.corpus import load_corpus
        from assistant.stores.files import llama_embedding

        started = time.perf_counter()
        self.settings = assistant.settings
        self.top_k = top_k
        self.embed_model = llama_embedding(assistant.embedder)  # given to llama-index, never set globally
        self.documents = {d.id: d for d in load_corpus(self.settings.corpus_dir)}
        llama_documents = [LlamaDocument(text=d.text, id_=d.id, metadata={"title": d.title, "source": d.source})
                           for d in self.documents.values()]
        # The defaults (1024 tokens, overlap 200) unless a comparison asks for other sizes.
        sizes = {k: v for k, v in (("chunk_size", chunk_size), ("chunk_overlap", chunk_overlap)) if v is not None}
        if "chunk_size" in sizes and "chunk_overlap" not in sizes:
            sizes["chunk_overlap"] = min(SentenceSplitter().chunk_overlap, sizes["chunk_size"] // 5)
        self.splitter = SentenceSplitter(**sizes)
        self.index = VectorStoreIndex.from_documents(llama_documents, transformations=[self.splitter],
                                                     embed_model=self.embed_model)
        self.n_nodes = len(self.index.docstore.docs)
        self.build_seconds = round(time.perf_counter() - started, 2)

    def config(self) -> dict[str, Any]:
        return {"engine": NAME, "retrieval_mode": "dense", "top_k": self.top_k,
                "splitter": f"SentenceSplitter(chunk_size={self.splitter.chunk_size}, "
                            f"chunk_overlap={self.splitter.chunk_overlap})",
                "nodes": self.n_nodes, "abstention": False, "history": "ignored",
                "embedding_model": self.settings.embedding_model, "build_seconds": self.build_seconds}

    def _passage(self, hit: Any) -> Passage:
        node = hit.node
        ref = node.ref_doc_id or ""
        document = self.documents.get(ref)
        text = node.get_content()
        start, end = -1, -1
        if document is not None:
            position = document.text.find(text)
            if position >= 0:
                start, end = position, position + len(text)
            elif node.start_char_idx is not None and node.end_char_idx is not None:
                start, end = node.start_char_idx, node.end_char_idx
        score = float(hit.score or 0.0)
        return Passage(chunk_id=node.node_id, text=text, document=document.id if document else ref,
                       title=node.metadata.get("title", ""), source=node.metadata.get("source", ""),
                       section="", start=start, end=end, score=round(score, 6), dense_score=round(score, 6),
                       bm25_score=0.0)

    def ask(self, question: str, history: list[dict] | None = None, k: int | None = None) -> Answer:
        from assistant.text import guess_language

        started = time.perf_counter()
        retriever = self.index.as_retriever(similarity_top_k=k or self.top_k)
        passages = tuple(self._passage(hit) for hit in retriever.retrieve(question))
        retrieved_ms = round((time.perf_counter() - started) * 1000, 2)
        language = guess_language(question)
        if not passages:
            return Answer(text="", citations=(), abstained=False, query=question, question=question,
                          language=language, engine=NAME, timings={"retrieval_ms": retrieved_ms})
        top = passages[0]
        citation = Citation(number=1, passage=top, score=top.score)
        return Answer(text=f"{top.text} [1]", citations=(citation,), abstained=False, query=question,
                      question=question, language=language, engine=NAME,
                      timings={"retrieval_ms": retrieved_ms,
                               "total_ms": round((time.perf_counter() - started) * 1000, 2)},
                      retrieved=passages)
