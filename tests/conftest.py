"""Shared fixtures: one real index, built once per test session from the real corpus and model."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from assistant import Assistant  # noqa: E402
from assistant.config import PROJECT_ROOT, Settings, load_settings  # noqa: E402
from assistant.corpus import load_corpus  # noqa: E402
from assistant.embeddings import Embedder  # noqa: E402

CORPUS_DIR = PROJECT_ROOT / "corpus"
DEV_SET = PROJECT_ROOT / "evals" / "datasets" / "dev.jsonl"
ARTIFACTS = PROJECT_ROOT / "test-artifacts"


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings pointing at a private index folder (the model cache is the user's, shared)."""
    root = tmp_path_factory.mktemp("assistant")
    return load_settings(env={}, corpus_dir=CORPUS_DIR, index_dir=root / "index", data_dir=root / "data")


@pytest.fixture(scope="session")
def embedder(settings: Settings) -> Embedder:
    return Embedder.from_settings(settings)


@pytest.fixture(scope="session")
def assistant(settings: Settings) -> Assistant:
    """The real thing: the e5 model, a FAISS + BM25 index built from corpus/."""
    return Assistant.load(settings=settings)


@pytest.fixture(scope="session")
def documents():
    return load_corpus(CORPUS_DIR)


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS


def free_port() -> int:
    """A TCP port nobody listens on, on the loopback interface."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]
