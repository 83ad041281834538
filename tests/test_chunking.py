"""Structure-aware chunking: exact offsets, sections, lists, sentence view, token window."""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from assistant.chunking import Chunker
from assistant.corpus import Document, load_corpus

MAX_TOKENS = 512


@pytest.fixture(scope="module")
def chunker(embedder):
    return Chunker(embedder.count_tokens, target_tokens=200, max_tokens=MAX_TOKENS)


def test_offsets_are_exact_for_every_chunk_and_sentence(chunker, documents):
    for doc in documents:
        chunks = chunker.split(doc)
        assert chunks
        for chunk in chunks:
            assert doc.text[chunk.start:chunk.end] == chunk.text
            for sentence in chunk.sentences:
                assert doc.text[sentence.start:sentence.end] == sentence.text
                assert chunk.start <= sentence.start < sentence.end <= chunk.end
                assert sentence.chunk_id == chunk.id and sentence.section == chunk.section


def test_sections_come_from_the_layout(chunker, documents):
    chunks = chunker.split(documents[0])
    sections = [c.section for c in chunks]
    # Short standalone lines become sections, in reading order, and no body line is taken for one.
    assert len(set(sections)) >= 4
    assert all(len(s.split()) <= 4 for s in sections)
    body_lines = [c.text for c in chunks if len(c.text) > 200]
    assert body_lines, "paragraphs stay in the chunks"


def test_lists_are_kept_together(chunker, documents):
    chunks = chunker.split(documents[0])
    lists = [c for c in chunks if any(s.in_list for s in c.sentences)]
    assert lists
    for chunk in lists:
        items = [s for s in chunk.sentences if s.in_list]
        assert len(items) >= 2 and all("\n" not in s.text for s in items)


def test_chunks_never_exceed_the_model_window(embedder, documents):
    small = Chunker(embedder.count_tokens, target_tokens=40, max_tokens=64)
    for doc in documents:
        for chunk in small.split(doc):
            assert embedder.count_tokens(chunk.context_header + chunk.text) <= 64
            assert doc.text[chunk.start:chunk.end] == chunk.text
    for chunk in Chunker(embedder.count_tokens).split(documents[0]):
        assert embedder.count_tokens(chunk.context_header + chunk.text) <= MAX_TOKENS


def test_markdown_headings_bullets_and_a_sentence_longer_than_the_window(tmp_path, embedder):
    long_sentence = " ".join(["la consolidation de la paix exige un dialogue inclusif"] * 80) + "."
    text = (f"# Rapport\n\n## Méthode\n\nLe dialogue a réuni des communautés. Les résultats sont publiés.\n\n"
            f"- premier point\n- second point\n\n## Annexe\n\n{long_sentence}\n")
    (tmp_path / "rapport.md").write_text(text, encoding="utf-8")
    [doc] = load_corpus(tmp_path)
    chunks = Chunker(embedder.count_tokens, target_tokens=100, max_tokens=128).split(doc)
    assert {c.section for c in chunks} >= {"Méthode", "Annexe"}
    assert any(s.in_list for c in chunks for s in c.sentences)
    annex = [c for c in chunks if c.section == "Annexe"]
    assert len(annex) > 1, "an over-long sentence is cut at spaces to fit the window"
    for chunk in chunks:
        assert doc.text[chunk.start:chunk.end] == chunk.text
        assert embedder.count_tokens(chunk.context_header + chunk.text) <= 128


def _check_offsets(document, chunks):
    for chunk in chunks:
        assert document.text[chunk.start:chunk.end] == chunk.text
        for sentence in chunk.sentences:
            assert document.text[sentence.start:sentence.end] == sentence.text and sentence.text.strip()


def test_long_paragraph_without_punctuation_is_prose_cut_in_linear_time(embedder):
    """A 1 MB line with no closing punctuation: cut into windows (not one list item), offsets exact."""
    import time

    words = "paix dialogue région accord nord population sécurité".split()
    text = " ".join(words[i % len(words)] + str(i % 97) for i in range(140_000))
    document = Document(id="long", title="Long", source="long.txt", text=text, body_start=0, sha256="x")
    chunker = Chunker(embedder.count_tokens, 200, embedder.max_tokens)
    started = time.perf_counter()
    chunks = chunker.split(document)
    elapsed = time.perf_counter() - started
    assert len(text) > 1_000_000 and elapsed < 10, f"{elapsed:.1f} s for 1 MB"
    assert not any(s.in_list for c in chunks for s in c.sentences)
    assert all(embedder.count_tokens(c.context_header + c.text) <= embedder.max_tokens for c in chunks)
    assert "".join(s.text for c in chunks for s in c.sentences).replace(" ", "") == text.replace(" ", "")
    _check_offsets(document, chunks)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=3000))
def test_any_text_chunks_with_exact_offsets(embedder, text):
    if not text.strip():
        return
    document = Document(id="f", title="Fuzz", source="f.txt", text=text, body_start=0, sha256="x")
    chunks = Chunker(embedder.count_tokens, 60, 120).split(document)
    _check_offsets(document, chunks)
    assert all(embedder.count_tokens(s.text) <= 120 for c in chunks for s in c.sentences)
