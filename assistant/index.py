"""Building and updating the index: a corpus chunked and embedded once (``IndexBuilder``), then
published to the configured location (``stores.location_for``: a build folder, PostgreSQL, or
memory). ``update_index`` embeds only what was added or changed since the published index;
``load_published`` reads what is published without building. How an index is kept and read is
``assistant.stores``'.
"""

from __future__ import annotations

import errno
import sys
import time
from datetime import datetime, timezone
from typing import Any, Callable

import numpy as np

from .chunking import Chunker
from .config import Settings
from .corpus import Document, read_corpus
from .embeddings import Embedder
from .errors import AssistantError
from .stores import Embedded, Index, IndexLocation, location_for
from .stores.base import phrase_texts
from .stores.manifest import CorruptIndex, fingerprint, library_versions, stale_reasons, vector_checksums

__all__ = ["IndexBuilder", "ensure_index", "load_published", "phrase_texts", "update_index"]


class IndexBuilder:
    """Chunks and embeds a corpus, then has a location (build folder, PostgreSQL, memory) publish it."""

    def __init__(self, settings: Settings, embedder: Embedder,
                 log: Callable[[str], None] = lambda message: None) -> None:
        self.settings, self.embedder, self.log = settings, embedder, log
        self.embedded = 0  # passages the last build sent through the model

    def build(self, documents: list[Document], location: IndexLocation, show_progress: bool = False,
              previous: Index | None = None) -> Index:
        """A new build of ``documents``, published when complete. Vectors of ``previous`` (an index
        built with the same model and chunking) are reused for every text it already embedded, so
        adding, changing or removing a document embeds only that document's passages and phrases.
        ``self.embedded`` then says how many passages went through the model."""
        started = time.perf_counter()
        location.prepare()  # a folder or database that cannot be written fails now, not after the encoder
        try:
            return self._build(documents, location, show_progress, previous, started)
        except OSError as exc:
            location.discard()
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise AssistantError(
                    f"Disque plein : le nouvel index n'a pas pu être écrit dans {location.describe()} (l'index précédent "
                    "reste publié, le dossier de travail est supprimé) ; libérez de la place, puis relancez "
                    "`assistant index`.") from exc
            raise
        except BaseException:
            location.discard()
            raise

    def _build(self, documents: list[Document], location: IndexLocation, show_progress: bool,
               previous: Index | None, started: float) -> Index:
        chunker = Chunker(self.embedder.count_tokens, self.settings.chunk_target_tokens,
                          min(self.settings.chunk_max_tokens, self.embedder.max_tokens),
                          self.settings.heading_max_words)
        chunks = [chunk for document in documents for chunk in chunker.split(document)]
        sentences = [s for c in chunks for s in c.sentences]
        known = previous.vectors_by_text() if previous is not None else {}
        chunk_texts = [c.context_header + c.text for c in chunks]
        self.embedded = len({t for t in chunk_texts if t not in known})
        self.log(f"{len(documents)} document(s), {len(chunks)} passages, {len(sentences)} phrases : calcul des vecteurs"
                 + (f" de {self.embedded} passage(s) nouveaux ou modifiés…" if previous is not None else "…"))
        chunk_vectors = self._vectors(chunk_texts, known, show_progress)
        sentence_vectors = self._vectors(phrase_texts(chunks), known, show_progress)
        heading_vectors = self._vectors([c.context_header for c in chunks], known)
        known.clear()  # the encoder's arrays (as large as the three above together) go now
        del chunk_texts
        manifest = fingerprint(self.settings, self.embedder, documents) | {
            "libraries": library_versions(),
            "built_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "documents": len(documents), "chunks": len(chunks), "sentences": len(sentences),
            "dimension": self.embedder.dimension,
            "vector_checksums": vector_checksums(chunk_vectors, sentence_vectors, heading_vectors),
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


def load_published(settings: Settings, embedder: Embedder) -> Index:
    """The published index as it is: no corpus read, nothing built (an app instance that only
    serves, e.g. from a PostgreSQL read replica). Refused when built with another model or chunking."""
    index = location_for(settings).load(embedder)
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
    location = location_for(settings)
    documents, failures = read_corpus(settings.corpus_dir, settings.max_document_bytes)
    try:
        manifest = location.read_manifest()
    except AssistantError:
        if not force:
            raise
        manifest = None  # a corrupt index being rebuilt: everything counts as added
    reasons = None if force or manifest is None else stale_reasons(manifest, settings, embedder, documents)
    built = reasons != []
    if loaded is not None and loaded.version != loaded.published_version():
        loaded = None  # another build was published since
    if not built:
        try:
            index = loaded or location.load(embedder)
        except CorruptIndex as exc:  # vectors changed since the build: a corrupt index is a stale one
            log(f"{exc} Reconstruction…")
            built, reasons = True, None
    if built:
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
