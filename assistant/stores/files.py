"""The embedded default (``vector_store = "faiss"``): an index as files in ``index_dir``, FAISS
through llama-index for the dense search and French BM25 (bm25s) for the lexical one.

Layout of ``index_dir``::

    current -> builds/<stamp>     (a symlink, swapped atomically when a build completes)
    builds/<stamp>/manifest.json  model id and checksum, chunking parameters, corpus hashes, ...
    builds/<stamp>/llama/         llama-index storage: docstore + FAISS IndexFlatIP
    builds/<stamp>/bm25/          BM25 over accent-folded text, French stemmer and stop words
    builds/<stamp>/chunks.json    chunks with their sentences (offsets into the source files)
    builds/<stamp>/sentence_vectors.npy, heading_vectors.npy

A build writes a new folder and only then moves the link, so an interrupted build leaves the
previous index in place and loadable.

llama-index objects are given the embedding model explicitly (``llama_embedding``); its global
``Settings`` are never read nor changed.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import tempfile
import threading
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import numpy as np

from ..chunking import Chunk
from ..config import Settings
from ..corpus import Document
from ..embeddings import Embedder
from ..errors import AssistantError
from ..text import fold_accents, stopwords
from ..types import Sentence
from .base import Embedded, Index, locations
from .manifest import check_vectors, corrupt, read_manifest

_NODES_PER_INSERT = 2048


def bm25_text(text: str) -> str:
    """BM25 sees accent-folded text; queries are folded the same way."""
    return fold_accents(text.casefold())


def llama_embedding(embedder: Embedder) -> Any:
    """llama-index's view of our ``Embedder`` (one model in memory, e5 prompts applied), to pass as
    ``embed_model=`` to every llama-index object that embeds."""
    from llama_index.core.base.embeddings.base import BaseEmbedding
    from pydantic import PrivateAttr

    class SentenceTransformerEmbedding(BaseEmbedding):
        """llama-index view of our Embedder (one model in memory, e5 prompts applied)."""

        _embedder: Any = PrivateAttr()

        def __init__(self, inner: Embedder) -> None:
            super().__init__(model_name=inner.model_id, embed_batch_size=32)
            self._embedder = inner

        def _get_query_embedding(self, query: str) -> list[float]:
            return self._embedder.embed_queries([query])[0].tolist()

        def _get_text_embedding(self, text: str) -> list[float]:
            return self._embedder.embed_passages([text])[0].tolist()

        def _get_text_embeddings(self, texts: list[str]) -> list[list[float]]:
            # llama-index embeds in batches through this; one text at a time, a 20 MB corpus took hours.
            return self._embedder.embed_passages(texts).tolist()

        async def _aget_query_embedding(self, query: str) -> list[float]:
            return self._get_query_embedding(query)

    return SentenceTransformerEmbedding(embedder)


class FilesSearch:
    """FAISS (exact inner product, through llama-index) and BM25 (bm25s, French stemmer and stop
    words, accent-folded) loaded from one build folder; read-only, safe for concurrent queries."""

    def __init__(self, vector_index: Any, bm25: Any, published: Callable[[], Path]) -> None:
        self.vector_index, self.bm25 = vector_index, bm25
        self._published = published  # the build folder ``current`` points to now
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

    def published_version(self) -> str:
        return str(self._published())


@locations.register("faiss")
class FilesLocation:
    """``index_dir``: builds written into a new folder, then published by swapping ``current``."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = Path(index_dir)
        self._work: Path | None = None

    @classmethod
    def from_settings(cls, settings: Settings) -> "FilesLocation":
        return cls(Path(settings.index_dir))

    def describe(self) -> str:
        return str(self.index_dir)

    def prepare(self) -> None:
        """The build's work folder, made now: a build killed at any point leaves it (swept by the
        next run) and never touches ``current``."""
        builds = _writable_builds_dir(self.index_dir)
        _sweep(self.index_dir)
        self._work = Path(tempfile.mkdtemp(prefix=f".tmp-{os.getpid()}-", dir=builds))

    def discard(self) -> None:
        if self._work is not None:
            shutil.rmtree(self._work, ignore_errors=True)

    def read_manifest(self) -> dict | None:
        return read_manifest(self.index_dir)

    def load(self, embedder: Embedder) -> Index:
        return load_index(self.index_dir, embedder)

    def publish(self, built: Embedded, documents: list[Document], embedder: Embedder,
                incremental: bool) -> Index:
        """A new build folder, whole (its vectors were reused where they could be), then ``current``.
        A full disk is an ``OSError`` (``ENOSPC``) whichever library was writing."""
        try:
            return self._publish(built, embedder)
        except OSError:
            raise
        except Exception as exc:  # FAISS reports a failed write as a RuntimeError
            if self._work is not None and _disk_full(self._work):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self._work)) from exc
            raise

    def _publish(self, built: Embedded, embedder: Embedder) -> Index:
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.core.schema import TextNode
        from llama_index.retrievers.bm25 import BM25Retriever
        from llama_index.vector_stores.faiss import FaissVectorStore
        import faiss
        import Stemmer

        chunks, work = built.chunks, self._work  # made by ``prepare``; removed by ``discard`` on failure
        store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(embedder.dimension))
        storage = StorageContext.from_defaults(vector_store=store)
        vector_index = VectorStoreIndex([], storage_context=storage, embed_model=llama_embedding(embedder))
        # In slices: a node's vector is a list of Python floats (about 12 kB), all of them at
        # once weighed more than the whole index at 20 MB of text.
        for at in range(0, len(chunks), _NODES_PER_INSERT):
            vector_index.insert_nodes([
                TextNode(id_=c.id, text=c.text, embedding=v.tolist(),
                         metadata={"document": c.document, "title": c.title, "source": c.source,
                                   "section": c.section, "start": c.start, "end": c.end},
                         excluded_embed_metadata_keys=["document", "source", "start", "end"],
                         excluded_llm_metadata_keys=["document", "start", "end"])
                for c, v in zip(chunks[at:at + _NODES_PER_INSERT], built.chunk_vectors[at:at + _NODES_PER_INSERT])])
        storage.persist(persist_dir=str(work / "llama"))

        bm25_nodes = [TextNode(id_=c.id, text=bm25_text(c.context_header + c.text)) for c in chunks]
        bm25 = BM25Retriever.from_defaults(  # the result count is given per query (FilesSearch)
            nodes=bm25_nodes, stemmer=Stemmer.Stemmer("french"), language=sorted(stopwords("french")),
            similarity_top_k=1)
        bm25.persist(str(work / "bm25"), show_progress=False)

        _write_chunks(work / "chunks.json", chunks)
        np.save(work / "sentence_vectors.npy", built.sentence_vectors)
        np.save(work / "heading_vectors.npy", built.heading_vectors)
        (work / "manifest.json").write_text(json.dumps(built.finished(), indent=2, ensure_ascii=False),
                                            encoding="utf-8")
        final = work.parent / datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%f")
        os.replace(work, final)
        _publish(self.index_dir, final)
        return Index.from_embedded(built, final, _files_search(vector_index, bm25, self.index_dir), str(final))


def load_index(index_dir: Path, embedder: Embedder) -> Index:
    """The index ``index_dir/current`` points to. ``AssistantError`` when missing or unreadable."""
    from llama_index.core import StorageContext, load_index_from_storage
    from llama_index.retrievers.bm25 import BM25Retriever
    from llama_index.vector_stores.faiss import FaissVectorStore
    import Stemmer

    index_dir = Path(index_dir)
    current = (index_dir / "current").resolve()
    manifest = read_manifest(index_dir)
    if manifest is None:
        raise AssistantError(f"Aucun index dans {index_dir} : lancez `assistant index`.")
    try:
        llama_dir = str(current / "llama")
        store = FaissVectorStore.from_persist_dir(llama_dir)
        storage = StorageContext.from_defaults(vector_store=store, persist_dir=llama_dir)
        vector_index = load_index_from_storage(storage, embed_model=llama_embedding(embedder))
        bm25 = BM25Retriever.from_persist_dir(str(current / "bm25"))
        bm25.stemmer = Stemmer.Stemmer("french")  # not persisted: a reloaded retriever is English
        chunk_dicts = json.loads((current / "chunks.json").read_text(encoding="utf-8"))
        chunks = [Chunk(**{**d, "sentences": tuple(Sentence(**s) for s in d["sentences"])}) for d in chunk_dicts]
        sentence_vectors = np.load(current / "sentence_vectors.npy")
        heading_vectors = np.load(current / "heading_vectors.npy")
        faiss_index = store.client  # the vectors, for cosines of BM25-only hits
        chunk_vectors = faiss_index.reconstruct_n(0, faiss_index.ntotal)
        _probe(vector_index, bm25, chunks, chunk_vectors)
    except AssistantError:
        raise
    except Exception as exc:  # any unreadable piece means the same thing to the user
        raise corrupt(index_dir, exc) from exc
    sentences = [s for c in chunks for s in c.sentences]
    if len(sentences) != len(sentence_vectors) or not len(chunks) == len(chunk_vectors) == len(heading_vectors):
        raise corrupt(index_dir, ValueError("sizes differ"))
    check_vectors(manifest, index_dir, chunk_vectors, sentence_vectors, heading_vectors)  # same shape, other values
    return Index(current, manifest, chunks, sentences, chunk_vectors=chunk_vectors,
                 sentence_vectors=sentence_vectors, heading_vectors=heading_vectors,
                 backend=_files_search(vector_index, bm25, index_dir), version=str(current))


def _files_search(vector_index: Any, bm25: Any, index_dir: Path) -> FilesSearch:
    return FilesSearch(vector_index, bm25, published=lambda: (index_dir / "current").resolve())


def _probe(vector_index: Any, bm25: Any, chunks: list[Chunk], chunk_vectors: np.ndarray) -> None:
    """Files of the wrong shape (an empty docstore, BM25 files emptied) load without a word and
    fail at the first question: ask both retrievers once, and check they know the same passages."""
    from llama_index.core.schema import QueryBundle

    ids = {c.id for c in chunks}
    if not chunks or set(vector_index.docstore.docs) != ids:
        raise ValueError("docstore and chunks differ")
    dense = vector_index.as_retriever(similarity_top_k=1).retrieve(
        QueryBundle(query_str="probe", embedding=chunk_vectors[0].tolist()))
    bm25.similarity_top_k = 1
    lexical = bm25.retrieve(bm25_text(chunks[0].text))
    # A passage's own vector and words find it: its cosine is 1 and its BM25 score positive.
    if not dense or not lexical or {h.node.node_id for h in dense + lexical} - ids \
            or (dense[0].score or 0) < 0.99 or (lexical[0].score or 0) <= 0:
        raise ValueError("a retriever does not find a passage by its own content")


def _write_chunks(path: Path, chunks: list[Chunk]) -> None:
    """``chunks.json``, one chunk at a time: the whole list as one string doubled the memory of a
    large build."""
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        for n, chunk in enumerate(chunks):
            out.write(("," if n else "") + json.dumps(chunk.to_dict(), ensure_ascii=False))
        out.write("]")


def _disk_full(folder: Path) -> bool:
    """Is the file system holding ``folder`` out of space (for this user)?"""
    try:
        return shutil.disk_usage(folder).free < 1_000_000
    except OSError:
        return False


def _writable_builds_dir(index_dir: Path) -> Path:
    builds = index_dir / "builds"
    try:
        builds.mkdir(parents=True, exist_ok=True)
        probe = tempfile.NamedTemporaryFile(dir=builds, prefix=".probe-")
        probe.close()
    except OSError as exc:
        raise AssistantError(
            f"Le dossier d'index {index_dir} n'est pas accessible en écriture ({exc.strerror}) : "
            "choisissez-en un autre avec --index ou ASSISTANT_INDEX_DIR."
        ) from exc
    return builds


def _publish(index_dir: Path, build: Path) -> None:
    """Point ``current`` at the new build (atomic rename of a symlink), then drop older builds."""
    link = index_dir / "current"
    temporary = index_dir / f".current-{os.getpid()}"
    if temporary.is_symlink() or temporary.exists():
        temporary.unlink()
    temporary.symlink_to(Path("builds") / build.name)
    os.replace(temporary, link)
    for old in (index_dir / "builds").iterdir():
        if old.name != build.name and not (old.name.startswith(".tmp-") and _owner_alive(old.name)):
            shutil.rmtree(old, ignore_errors=True)


def _owner_alive(name: str) -> bool:
    """Is the process whose id a temporary name carries (``.tmp-<pid>-...``, ``.current-<pid>``) running?"""
    try:
        pid = int(name.split("-")[1])
    except (IndexError, ValueError):
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # alive, another user's
        pass
    return True


def _sweep(index_dir: Path) -> None:
    """What a killed build left behind (its work folder, its half-made link) goes at the next run."""
    for leftover in [*index_dir.glob(".current-*"), *(index_dir / "builds").glob(".tmp-*")]:
        if _owner_alive(leftover.name):
            continue
        if leftover.is_symlink() or leftover.is_file():
            leftover.unlink(missing_ok=True)
        else:
            shutil.rmtree(leftover, ignore_errors=True)
