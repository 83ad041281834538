"""The stores, fast: an index of a few texts built through the real reader, chunker and
``IndexBuilder`` with a hashing embedder (no model loaded), held in memory or in files. What every
``Store`` promises (passages and phrases by id, offsets, vectors, searches, versions), the one
registry of locations, and llama-index never given or asked anything through its global settings."""

from __future__ import annotations

import inspect
from types import SimpleNamespace

import numpy as np
import pytest

from assistant.errors import AssistantError
from assistant.index import IndexBuilder, ensure_index, update_index
from assistant.retrieval import Retriever
from assistant.stores import Index, Store, location_for, locations
from assistant.stores.files import FilesLocation, load_index
from assistant.stores.memory import MemoryLocation
from assistant.stores.postgres import PostgresLocation

from .fakes import SAMPLE_LIBRARY, HashingEmbedder, memory_index, memory_settings, stored_vectors, write_corpus

TEXTS = {**SAMPLE_LIBRARY,
    "bamako.txt": "Bamako\n\nLes résultats seront présentés lors d'une restitution publique à Bamako. "
                  "Un rapport final sera diffusé aux partenaires."}


@pytest.fixture(scope="module")
def embedder() -> HashingEmbedder:
    return HashingEmbedder()


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("memory")


@pytest.fixture(scope="module")
def index(folder, embedder) -> Index:
    return memory_index(folder, TEXTS, embedder)


@pytest.fixture(scope="module")
def files_index(tmp_path_factory, embedder) -> Index:
    """The same texts in the files store (FAISS + bm25s)."""
    root = tmp_path_factory.mktemp("files")
    settings = memory_settings(root)
    write_corpus(root, TEXTS)
    from assistant.corpus import read_corpus

    documents, _ = read_corpus(settings.corpus_dir)
    return IndexBuilder(settings, embedder).build(documents, FilesLocation(root / "index"))


def test_hashing_embedder_is_deterministic_and_normalised(embedder):
    a = embedder.embed_passages(["Une réunion à Mopti", "Le plan de travail", "le la les"])
    b = HashingEmbedder().embed_queries(["Une réunion à Mopti", "Le plan de travail", "le la les"])
    assert a.dtype == np.float32 and a.shape == (3, embedder.dimension)
    assert np.array_equal(a, b) and np.allclose(np.linalg.norm(a, axis=1), 1.0)
    assert float(embedder.embed_query("réunions à MOPTI") @ a[0]) > 0.99, "stems, case and accents folded"
    assert embedder.count_tokens("Une réunion.") == embedder.count_tokens("Une réunion.", embedder.passage_prompt)


def test_passages_and_phrases_by_id_in_index_order(index, folder):
    sources = {name: (folder / "corpus" / name).read_text(encoding="utf-8") for name in TEXTS}
    assert index.count_passages() == len(index.chunks) >= len(TEXTS)
    assert index.count_sentences() == len(index.sentences) == sum(len(c.sentences) for c in index.chunks)
    assert [s.id for s in index.sentences] == [s.id for c in index.chunks for s in c.sentences]
    for position, chunk in enumerate(index.chunks):
        assert index.has_chunk(chunk.id) and index.chunk(chunk.id) is chunk and index.position(chunk.id) == position
        assert sources[chunk.source][chunk.start:chunk.end] == chunk.text
        for sentence in chunk.sentences:
            assert index.sentence(sentence.id) is sentence and sentence.chunk_id == chunk.id
            assert sources[chunk.source][sentence.start:sentence.end] == sentence.text
    assert not index.has_chunk("absent#0")
    with pytest.raises(KeyError):
        index.chunk("absent#0")
    assert index.manifest["chunks"] == index.count_passages() and index.manifest["build_seconds"] >= 0


def test_vectors_are_those_the_builder_embedded(index, embedder):
    chunk = index.chunks[1]
    header = chunk.context_header
    assert np.array_equal(index.chunk_vector(chunk.id), embedder.embed_passages([header + chunk.text])[0])
    assert np.array_equal(index.heading_vector(chunk.id), embedder.embed_passages([header])[0])
    ids = [s.id for s in index.sentences]
    for sentence in chunk.sentences:
        assert np.array_equal(index.sentence_vector(sentence.id), embedder.embed_passages([header + sentence.text])[0])
    picked = [ids[3], ids[0], ids[3]]
    assert np.array_equal(index.sentence_matrix(picked), np.stack([index.sentence_vector(i) for i in picked]))
    query = embedder.embed_query("atelier sur la sécurité à Sévaré")
    cosines = index.sentence_cosines(ids[::-1], query)
    assert list(cosines) == ids, "in index order, whatever the order asked"
    assert index.sentence_cosines([ids[2], ids[0], ids[2]], query) == {i: cosines[i] for i in (ids[0], ids[2])}
    assert np.allclose([cosines[i] for i in ids], [float(index.sentence_vector(i) @ query) for i in ids])
    known = index.vectors_by_text()
    assert np.array_equal(known[header + chunk.text], index.chunk_vector(chunk.id))
    assert np.array_equal(known[header + chunk.sentences[0].text], index.sentence_vector(chunk.sentences[0].id))


def test_dense_search_is_exact_cosine_best_first(index, embedder):
    target = index.chunks[2]
    query = index.chunk_vector(target.id)
    found = index.dense_search(query, 3)
    assert len(found) == 3 and next(iter(found)) == target.id and found[target.id] == pytest.approx(1.0)
    scores = list(found.values())
    assert scores == sorted(scores, reverse=True)
    for chunk_id, cosine in found.items():
        assert cosine == pytest.approx(float(index.chunk_vector(chunk_id) @ query), abs=1e-6)
    assert len(index.dense_search(query, 100)) == index.count_passages()


def test_lexical_search_folds_accents_stems_and_drops_stop_words(index):
    found = index.lexical_search("comite de pilotage", 5)  # no accent, singular
    assert found and index.chunk(next(iter(found))).source == "segou.md"
    assert all(score > 0 for score in found.values())
    assert list(found.values()) == sorted(found.values(), reverse=True)
    assert index.chunk(next(iter(index.lexical_search("securite Severe", 5)))).section == "Suites"
    assert index.lexical_search("", 5) == index.lexical_search("   ", 5) == {}
    assert index.lexical_search("le la les de the of", 5) == {}, "stop words alone match nothing"
    assert len(index.lexical_search("Mopti Ségou Bamako", 2)) == 2


def test_the_memory_and_files_stores_search_alike(index, files_index, embedder):
    assert [c.to_dict() for c in index.chunks] == [c.to_dict() for c in files_index.chunks]
    for mine, theirs in zip(stored_vectors(index), stored_vectors(files_index)):
        assert np.allclose(mine, theirs, atol=1e-6)
    for query in ("comités de paix à Mopti", "formation des mediateurs", "What is the final report?", "restitution"):
        mine, theirs = index.lexical_search(query, 4), files_index.lexical_search(query, 4)
        assert list(mine) == list(theirs) and np.allclose(list(mine.values()), list(theirs.values())), query
        vector = embedder.embed_query(query)
        mine, theirs = index.dense_search(vector, 4), files_index.dense_search(vector, 4)
        # The same cosines best first (passages with equal cosines may come in another order).
        assert np.allclose(list(mine.values()), list(theirs.values()), atol=1e-6), query


def test_retriever_reads_only_the_store(index, embedder):
    retriever = Retriever(index, embedder)
    assert retriever.pool == index.count_passages()
    for mode in ("hybrid", "dense", "bm25"):
        passages = retriever.retrieve("Où l'atelier sur la sécurité se tiendra-t-il ?", 3, mode=mode)
        assert passages and passages[0].source == "mopti.md", mode
        for p in passages:
            chunk = index.chunk(p.chunk_id)
            assert (p.text, p.start, p.end, p.section) == (chunk.text, chunk.start, chunk.end, chunk.section)
            assert p.dense_score == round(float(index.chunk_vector(p.chunk_id) @ embedder.embed_query(
                "Où l'atelier sur la sécurité se tiendra-t-il ?")), 6)


def test_a_store_s_searches_may_name_passages_a_snapshot_lacks(index, embedder):
    """A shared store updated by another process: passages newer than the snapshot are left out."""

    class Newer:
        def __init__(self, inner):
            self.inner = inner

        def dense_search(self, vector, k):
            return {"nouveau#0": 0.99, **self.inner.dense_search(vector, k)}

        def lexical_search(self, query, k):
            return {"nouveau#0": 9.0, **self.inner.lexical_search(query, k)}

        def published_version(self):
            return "2"

    chunk_vectors, sentence_vectors, heading_vectors = stored_vectors(index)
    snapshot = Index(index.path, index.manifest, index.chunks, index.sentences, chunk_vectors=chunk_vectors,
                     sentence_vectors=sentence_vectors, heading_vectors=heading_vectors,
                     backend=Newer(index.backend), version="1")
    passages = Retriever(snapshot, embedder).retrieve("comités de paix", 10)
    assert passages and "nouveau#0" not in {p.chunk_id for p in passages}
    assert snapshot.published_version() != snapshot.version


def test_index_implements_every_store_method(index):
    contract = {name for name, member in inspect.getmembers(Store) if not name.startswith("_") and callable(member)}
    contract |= set(Store.__annotations__)
    assert contract >= {"chunk", "sentence", "has_chunk", "position", "sentence_vector", "sentence_cosines",
                        "sentence_matrix", "chunk_vector", "heading_vector", "dense_search", "lexical_search",
                        "published_version", "count_passages", "count_sentences", "vectors_by_text",
                        "chunks", "sentences", "manifest", "version", "path"}
    missing = {name for name in contract if not hasattr(index, name)}
    assert not missing
    for name in contract:
        documented = getattr(Store, name, None)
        assert documented is None or inspect.getdoc(documented), f"Store.{name} has no contract"


def test_one_registry_names_every_location(tmp_path):
    assert {name: locations.get(name) for name in locations} == \
        {"faiss": FilesLocation, "postgres": PostgresLocation, "memory": MemoryLocation}
    settings = memory_settings(tmp_path)
    assert isinstance(location_for(settings), MemoryLocation)
    files = location_for(settings.with_overrides(vector_store="faiss"))
    assert isinstance(files, FilesLocation) and files.describe() == str(tmp_path / "index")
    with pytest.raises(AssistantError, match=r"^vector_store inconnu « chroma » : choisissez parmi ") as error:
        location_for(settings.with_overrides(vector_store="chroma"))
    assert set(str(error.value).split("parmi ")[1].rstrip(".").split(", ")) == {"faiss", "postgres", "memory"}


def test_a_location_registered_by_name_is_chosen_by_vector_store(tmp_path, embedder):
    """A new location is one class and one registration: building, loading and retrieval use it."""

    @locations.register("elsewhere")
    class Elsewhere(MemoryLocation):
        @classmethod
        def from_settings(cls, settings):
            return cls("elsewhere:" + str(settings.index_dir))

    try:
        write_corpus(tmp_path, TEXTS)
        settings = memory_settings(tmp_path).with_overrides(vector_store="elsewhere")
        index = ensure_index(settings, embedder, log=lambda m: None)
        assert isinstance(location_for(settings), Elsewhere) and index.count_passages() == len(index.chunks)
        assert Retriever(index, embedder).retrieve("comités de paix", 1)[0].source == "mopti.md"
    finally:
        locations.unregister("elsewhere")


def test_updates_through_the_registry_embed_only_what_changed(tmp_path):
    embedder = HashingEmbedder()
    write_corpus(tmp_path, TEXTS)
    settings = memory_settings(tmp_path)
    first, summary = update_index(settings, embedder, log=lambda m: None)
    assert summary["added"] == sorted(TEXTS) and first.version == "1" and first.published_version() == "1"
    again, summary = update_index(settings, embedder, log=lambda m: None, loaded=first)
    assert again is first and summary["chunks_embedded"] == 0
    write_corpus(tmp_path, {"kayes.md": "# Kayes\n\nUne caravane de la paix est partie de Kayes en mai."})
    calls = embedder.calls
    updated, summary = update_index(settings, embedder, log=lambda m: None, loaded=first)
    assert summary["added"] == ["kayes.md"] and summary["chunks_embedded"] == 1
    assert embedder.calls - calls == 2, "its passage (its one phrase reads the same text) and its header"
    assert updated.version == "2" and first.published_version() == "2" != first.version
    assert ensure_index(settings, embedder, log=lambda m: None) is updated
    full = memory_index(tmp_path / "full", {**TEXTS, "kayes.md": "# Kayes\n\nUne caravane de la paix est partie "
                                                                  "de Kayes en mai."}, HashingEmbedder())
    assert [c.to_dict() for c in updated.chunks] == [c.to_dict() for c in full.chunks]
    for mine, theirs in zip(stored_vectors(updated), stored_vectors(full)):
        assert np.array_equal(mine, theirs)
    MemoryLocation.from_settings(settings).forget()
    with pytest.raises(AssistantError, match="Aucun index"):
        MemoryLocation.from_settings(settings).load(embedder)


@pytest.fixture()
def no_llama_globals(monkeypatch):
    """llama-index's global ``Settings`` fail the test if read or written: every llama-index object
    must be given the embedding model (and no LLM is ever needed)."""
    from llama_index.core.settings import _Settings

    def refuse(*_):
        raise AssertionError("llama-index's global Settings were used")

    for name in ("llm", "embed_model"):
        monkeypatch.setattr(_Settings, name, property(refuse, refuse))


def test_llama_index_is_given_the_model_and_its_globals_stay_untouched(no_llama_globals, tmp_path, embedder):
    from llama_index.core import Settings

    with pytest.raises(AssertionError):
        Settings.embed_model = None  # what ``configure_llama_index`` did
    write_corpus(tmp_path, TEXTS)
    settings = memory_settings(tmp_path).with_overrides(vector_store="faiss")
    built, _ = update_index(settings, embedder, log=lambda m: None)
    loaded = load_index(settings.index_dir, embedder)
    query = "formation des médiateurs"
    assert loaded.dense_search(embedder.embed_query(query), 2) == built.dense_search(embedder.embed_query(query), 2)
    assert loaded.lexical_search(query, 2) == built.lexical_search(query, 2)
    from evals.baseline import LlamaIndexBaseline

    baseline = LlamaIndexBaseline(SimpleNamespace(settings=settings, embedder=embedder))
    answer = baseline.ask("Quand la formation des médiateurs commence-t-elle ?")
    assert answer.citations and "juin" in answer.citations[0].passage.text
