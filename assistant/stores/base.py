"""The contracts between the stores and everything else, and the types they share.

- ``Store``: everything answering a question reads from an index (passages and phrases by id,
  their vectors, the two searches, counts, what is published now). Retrieval, answering,
  evidence and generation ask a ``Store`` and never reach into one.
- ``IndexLocation``: where an index is published and loaded from (a build folder, a PostgreSQL
  database, this process's memory), registered by name in ``locations``; ``stores.location_for``
  picks the one ``Settings.vector_store`` names.
- ``SearchBackend``: the two searches of one location over one published index.
- ``Index``: a loaded index, the one ``Store`` implementation: its passages and phrases in index
  order, their vectors (held here, read only through the methods below) and the location's
  ``SearchBackend``.
- ``Embedded``: a corpus chunked and embedded by ``index.IndexBuilder``, what a location publishes.

Every location loads and publishes the same ``Index``; only the searches differ.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Protocol, Sequence

import numpy as np

from ..chunking import Chunk
from ..config import Settings
from ..corpus import Document
from ..embeddings import Embedder
from ..registry import Registry
from ..types import Sentence


class SearchBackend(Protocol):
    """The two searches of hybrid retrieval over one published index, as one location runs them."""

    def dense_search(self, vector: np.ndarray, k: int) -> dict[str, float]:
        """See ``Store.dense_search``."""

    def lexical_search(self, query: str, k: int) -> dict[str, float]:
        """See ``Store.lexical_search``."""

    def published_version(self) -> str:
        """See ``Store.published_version``."""


class Store(Protocol):
    """What answering reads from one published index. Passage (chunk) and phrase (sentence) ids
    are those of ``chunking``; "index order" is the corpus's document order, then each
    document's passages in reading order, and each passage's phrases in reading order.

    A store is read-only and safe for concurrent readers. Its passages are a snapshot: they do
    not change once loaded, even when another process publishes a newer index meanwhile (see
    ``published_version``); the searches of a shared store may then name passages the snapshot
    does not hold (``has_chunk`` tells)."""

    path: Path  # where it was loaded from (a build folder; for PostgreSQL, its data folder)
    manifest: dict  # how it was built (``stores.manifest``): model, chunking, corpus hashes, counts
    version: str  # what was published when this snapshot was loaded (compare ``published_version``)
    chunks: list[Chunk]  # every passage, in index order, each with its phrases
    sentences: list[Sentence]  # every phrase, in index order

    def chunk(self, chunk_id: str) -> Chunk:
        """The passage ``chunk_id``, with its text, offsets into its source file and phrases.
        ``KeyError`` when the snapshot does not hold it."""

    def sentence(self, sentence_id: str) -> Sentence:
        """The phrase ``sentence_id``, with its offsets. ``KeyError`` when not held."""

    def has_chunk(self, chunk_id: str) -> bool:
        """Whether the snapshot holds the passage ``chunk_id``."""

    def position(self, chunk_id: str) -> int:
        """The passage's place in index order, from 0 (ties between equal scores are broken by it)."""

    def sentence_vector(self, sentence_id: str) -> np.ndarray:
        """The phrase's normalised vector (float32), embedded after its passage's header."""

    def sentence_cosines(self, sentence_ids: Iterable[str], vector: np.ndarray) -> dict[str, float]:
        """Phrase id -> cosine with the normalised ``vector``, for each distinct id given,
        computed as one product over their rows in index order: a float32 product's last digits
        depend on the rows beside it, and the same phrases asked in another order or with
        repeats must give the same numbers."""

    def sentence_matrix(self, sentence_ids: Sequence[str]) -> np.ndarray:
        """The phrases' vectors as the rows of one float32 matrix, in the order given (repeats
        kept): ``sentence_matrix(ids) @ vector`` is one product over exactly those rows."""

    def chunk_vector(self, chunk_id: str) -> np.ndarray:
        """The passage's normalised vector (float32), of its header followed by its text."""

    def heading_vector(self, chunk_id: str) -> np.ndarray:
        """The normalised vector of the passage's « title › section » header alone."""

    def dense_search(self, vector: np.ndarray, k: int) -> dict[str, float]:
        """Up to ``k`` passage ids nearest to a normalised query vector -> their cosine, best first
        (insertion order). May name passages published after this snapshot was loaded."""

    def lexical_search(self, query: str, k: int) -> dict[str, float]:
        """Up to ``k`` passage ids matching the query's words -> a positive score, best first
        (insertion order); empty for a query without words. French analysis: case and accents
        folded, stop words dropped, words stemmed. May name passages published after this
        snapshot was loaded."""

    def published_version(self) -> str:
        """What is published now at this store's location (another process may have published
        a newer index since this snapshot was loaded: then it differs from ``version``)."""

    def count_passages(self) -> int:
        """How many passages the snapshot holds (``len(chunks)``)."""

    def count_sentences(self) -> int:
        """How many phrases the snapshot holds (``len(sentences)``)."""

    def vectors_by_text(self) -> dict[str, np.ndarray]:
        """Embedded text -> its vector, for everything in the snapshot (passages after their
        header, phrases after their header, headers alone): an incremental build embeds only
        texts not in it. A vector depends on its text alone, whatever document it came from."""


class IndexLocation(Protocol):
    """Where an index is published and loaded from: a build folder, a PostgreSQL database, or
    this process's memory. A build calls ``prepare``, then ``publish`` (or ``discard`` if it
    fails); what was published before stays loadable until ``publish`` completes."""

    @classmethod
    def from_settings(cls, settings: Settings) -> "IndexLocation":
        """The location ``settings`` name (``index_dir``, ``database_url``, ...)."""

    def describe(self) -> str:
        """Where it is, for messages (no password)."""

    def prepare(self) -> None:
        """Ready to receive a build: a location that cannot be written fails here, before the
        encoder runs. Raises ``AssistantError``."""

    def discard(self) -> None:
        """Forget what a failed build left (nothing published changes)."""

    def read_manifest(self) -> dict | None:
        """The published index's manifest, None when nothing is published (or tables of another
        version of this program). ``AssistantError`` when unreadable."""

    def load(self, embedder: Embedder) -> "Index":
        """The published index. ``AssistantError`` (one sentence) when missing or corrupt."""

    def publish(self, built: "Embedded", documents: list[Document], embedder: Embedder,
                incremental: bool) -> "Index":
        """Publish ``built`` (made from ``documents``) atomically for readers; ``incremental``:
        the previous index had the same model and chunking, only what changed need be written."""


# Locations by ``vector_store`` name: each location class registers itself in its own module
# (``@locations.register("faiss")``), an add-on through an ``assistant.stores`` entry point.
locations: Registry[type[IndexLocation]] = Registry(
    "stores", "vector_store",
    builtins=("assistant.stores.files", "assistant.stores.postgres", "assistant.stores.memory"))


def phrase_texts(chunks: list[Chunk]) -> list[str]:
    """What each phrase's vector reads, in index order: the phrase after its passage's
    "title › section" header, so that « Il meurt en 814 » is about its article's subject."""
    return [chunk.context_header + sentence.text for chunk in chunks for sentence in chunk.sentences]


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


class Index:
    """A loaded index (the ``Store`` every location gives): passages, phrases and their vectors
    in index order, searched by the location's ``SearchBackend``. Made by the stores only."""

    def __init__(self, path: Path, manifest: dict, chunks: list[Chunk], sentences: list[Sentence], *,
                 chunk_vectors: np.ndarray, sentence_vectors: np.ndarray, heading_vectors: np.ndarray,
                 backend: SearchBackend, version: str) -> None:
        self.path, self.manifest, self.version = path, manifest, version
        self.chunks, self.sentences = chunks, sentences
        self.backend = backend
        self._chunk_vectors, self._sentence_vectors = chunk_vectors, sentence_vectors
        self._heading_vectors = heading_vectors  # per chunk: its "title › section" alone
        self._chunk_by_id = {c.id: c for c in chunks}
        self._chunk_position = {c.id: i for i, c in enumerate(chunks)}
        self._sentence_position = {s.id: i for i, s in enumerate(sentences)}
        self._sentence_by_id = {s.id: s for s in sentences}

    @classmethod
    def from_embedded(cls, built: Embedded, path: Path, backend: SearchBackend, version: str) -> "Index":
        """What a build just published, without reading it back."""
        return cls(path, built.manifest, built.chunks, built.sentences, chunk_vectors=built.chunk_vectors,
                   sentence_vectors=built.sentence_vectors, heading_vectors=built.heading_vectors,
                   backend=backend, version=version)

    def __repr__(self) -> str:
        return f"Index({str(self.path)!r}, version={self.version!r}, passages={len(self.chunks)})"

    # -- passages and phrases ---------------------------------------------------------------
    def chunk(self, chunk_id: str) -> Chunk:
        return self._chunk_by_id[chunk_id]

    def sentence(self, sentence_id: str) -> Sentence:
        return self._sentence_by_id[sentence_id]

    def has_chunk(self, chunk_id: str) -> bool:
        return chunk_id in self._chunk_by_id

    def position(self, chunk_id: str) -> int:
        return self._chunk_position[chunk_id]

    def count_passages(self) -> int:
        return len(self.chunks)

    def count_sentences(self) -> int:
        return len(self.sentences)

    # -- vectors -----------------------------------------------------------------------------
    def sentence_vector(self, sentence_id: str) -> np.ndarray:
        return self._sentence_vectors[self._sentence_position[sentence_id]]

    def sentence_cosines(self, sentence_ids: Iterable[str], vector: np.ndarray) -> dict[str, float]:
        positions = sorted({self._sentence_position[i] for i in sentence_ids})
        cosines = (self._sentence_vectors[positions] @ vector).tolist()
        return {self.sentences[p].id: c for p, c in zip(positions, cosines)}

    def sentence_matrix(self, sentence_ids: Sequence[str]) -> np.ndarray:
        return self._sentence_vectors[[self._sentence_position[i] for i in sentence_ids]]

    def chunk_vector(self, chunk_id: str) -> np.ndarray:
        return self._chunk_vectors[self._chunk_position[chunk_id]]

    def heading_vector(self, chunk_id: str) -> np.ndarray:
        return self._heading_vectors[self._chunk_position[chunk_id]]

    def vectors_by_text(self) -> dict[str, np.ndarray]:
        known: dict[str, np.ndarray] = {}
        for chunk, vector, heading in zip(self.chunks, self._chunk_vectors, self._heading_vectors):
            known[chunk.context_header + chunk.text] = vector
            known[chunk.context_header] = heading
        for text, vector in zip(phrase_texts(self.chunks), self._sentence_vectors):
            known[text] = vector
        return known

    # -- searches (the location's) -----------------------------------------------------------
    def dense_search(self, vector: np.ndarray, k: int) -> dict[str, float]:
        return self.backend.dense_search(vector, k)

    def lexical_search(self, query: str, k: int) -> dict[str, float]:
        return self.backend.lexical_search(query, k)

    def published_version(self) -> str:
        return self.backend.published_version()
