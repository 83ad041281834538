"""Stand-ins for fast tests: an embedder that loads no model, and an index held in memory built
from a few texts through the real reader, chunker and ``IndexBuilder``."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import numpy as np

from assistant.config import Settings, load_settings
from assistant.corpus import read_corpus
from assistant.index import IndexBuilder
from assistant.stores import Index
from assistant.stores.memory import MemoryLocation
from assistant.text import content_stems

_TOKENS = re.compile(r"\w+|[^\w\s]")


class HashingEmbedder:
    """Duck-types ``assistant.embeddings.Embedder`` without a model: a text's vector is the feature
    hashing of its accent-folded French stems (stop words left out) into ``dimension`` signed
    buckets, L2-normalised. Deterministic across runs and processes; texts sharing words have a
    positive cosine, texts sharing none a cosine near 0. Queries and passages are embedded alike."""

    backend = "hashing"

    def __init__(self, dimension: int = 64, max_tokens: int = 512) -> None:
        self.dimension, self.max_tokens = dimension, max_tokens
        self.model_id = f"tests/hashing-{dimension}"
        self.checksum = hashlib.sha256(self.model_id.encode()).hexdigest()
        self.backend_id = "hashing/1"
        self.query_prompt, self.passage_prompt = "query: ", "passage: "
        self.calls = 0  # texts embedded so far (what an incremental build saves)

    def _vector(self, text: str) -> np.ndarray:
        vector = np.zeros(self.dimension, dtype=np.float32)
        for stem in content_stems(text):
            digest = hashlib.blake2b(stem.encode("utf-8"), digest_size=8).digest()
            bucket = int.from_bytes(digest[:4], "little") % self.dimension
            vector[bucket] += 1.0 if digest[4] & 1 else -1.0
        norm = float(np.linalg.norm(vector))
        if norm == 0.0:  # no content word: one fixed direction, still a unit vector
            vector[0], norm = 1.0, 1.0
        return vector / norm

    def _encode(self, texts: list[str]) -> np.ndarray:
        self.calls += len(texts)
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        return np.stack([self._vector(t) for t in texts]).astype(np.float32)

    def embed_queries(self, texts: list[str]) -> np.ndarray:
        return self._encode(list(texts))

    def embed_query(self, text: str) -> np.ndarray:
        return self._encode([text])[0]

    def embed_passages(self, texts: list[str], show_progress: bool = False) -> np.ndarray:
        return self._encode(list(texts))

    def count_tokens(self, text: str, prompt: str | None = None) -> int:
        """Words and punctuation marks of the prompt and text, plus the two special tokens."""
        return len(_TOKENS.findall((self.passage_prompt if prompt is None else prompt) + text)) + 2


def memory_settings(folder: Path, **overrides) -> Settings:
    """Settings for an in-memory index of the texts in ``folder/corpus`` (named after ``folder``)."""
    return load_settings(env={}, corpus_dir=folder / "corpus", index_dir=folder / "index",
                         data_dir=folder / "data", vector_store="memory", **overrides)


def write_corpus(folder: Path, texts: dict[str, str]) -> Path:
    """``texts`` (file name -> content, e.g. ``{"mopti.md": "# Mopti\\n\\n..."}``) as a corpus folder."""
    corpus = folder / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    for name, text in texts.items():
        (corpus / name).write_text(text, encoding="utf-8")
    return corpus


def memory_index(folder: Path, texts: dict[str, str], embedder: HashingEmbedder | None = None,
                 **overrides) -> Index:
    """An index in memory of ``texts``, read, chunked and embedded as any corpus is (the real
    reader, chunker and ``IndexBuilder``), published to a ``MemoryLocation`` named after ``folder``."""
    settings = memory_settings(folder, **overrides)
    write_corpus(folder, texts)
    documents, failures = read_corpus(settings.corpus_dir, settings.max_document_bytes)
    assert not failures, failures
    builder = IndexBuilder(settings, embedder or HashingEmbedder())
    return builder.build(documents, MemoryLocation.from_settings(settings))


def stored_vectors(index: Index) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The passages', phrases' and headers' vectors of ``index``, in index order, read as any
    module outside the stores reads them (for comparing two indexes)."""
    return (np.stack([index.chunk_vector(c.id) for c in index.chunks]),
            np.stack([index.sentence_vector(s.id) for s in index.sentences]),
            np.stack([index.heading_vector(c.id) for c in index.chunks]))


# A small library of three notes (two Markdown, one plain text), for the stores' and integrity tests.
SAMPLE_LIBRARY = {
    "mopti.md": "# Mopti\n\nUne réunion des comités de paix s'est tenue à Mopti le 12 mars 2024. "
                "Les maires de la région y ont participé.\n\n## Suites\n\n"
                "Un atelier sur la sécurité suivra à Sévaré en avril. Les forces de défense seront invitées.",
    "segou.md": "# Ségou\n\nLe comité de pilotage a validé le plan de travail à Ségou. "
                "Trois priorités ont été retenues pour l'année.\n\n## Formation\n\n"
                "La formation des médiateurs communautaires commence en juin.",
}


async def fake_gradio_login(scope, receive, send) -> None:
    """Gradio's /login contract: 400 on bad credentials, 200 on good (the password « good »)."""
    body = (await receive())["body"]
    status = 200 if b"password=good" in body else 400
    await send({"type": "http.response.start", "status": status, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


def login_attempts(throttle):
    """``attempt(user, password, address) -> (status, headers)``: one sign-in form through an ASGI
    throttle, as a browser at ``address`` would post it."""
    import asyncio

    async def attempt_async(user: str, password: str, address: str) -> tuple[int, dict]:
        sent = []

        async def receive():
            return {"type": "http.request", "body": f"username={user}&password={password}".encode(), "more_body": False}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/login", "client": (address, 1)}
        await throttle(scope, receive, send)
        return sent[0]["status"], dict(sent[0]["headers"])

    return lambda user, password, address: asyncio.run(attempt_async(user, password, address))
