"""The web app's reliability fixes of issue 26: the sign-in throttle that cannot lock the owner out
(point 3), request sizes limited before reading (4), handlers reachable by name (7), the browser
key kept on the server (8), forwarded addresses believed from configured proxies only (9), file
names as text and document links (10), and ``k`` / ``mode`` checked by the CLI and the API (12).

The app runs over an in-memory index with the small deterministic embedder (``tests/fakes.py``):
no model is loaded; each server listens on 127.0.0.1 and is closed by its fixture."""

from __future__ import annotations

import asyncio
import json
import uuid
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import httpx
import pytest

from assistant import Assistant

from .conftest import free_port
from .fakes import HashingEmbedder, fake_gradio_login, login_attempts, memory_index, memory_settings

NOTE = """# Note de l'atelier de Mopti

## Atelier

L'atelier de dialogue s'est tenu à Mopti le 12 mars 2024. La session a été animée par Aminata Traoré. Trente-deux participants y ont pris part.

## Radio

La radio de Gao diffuse l'émission Paroles de paix chaque mardi soir. Les auditeurs appellent pendant une heure.
"""
QUESTION = "Quand l'atelier de Mopti s'est-il tenu ?"


def fast_assistant(folder: Path, texts: dict[str, str] | None = None, **overrides: Any) -> Assistant:
    """An assistant over an in-memory index of ``texts`` (in ``folder/corpus``), no model loaded."""
    embedder = HashingEmbedder()
    index = memory_index(folder, texts or {"note.md": NOTE}, embedder)
    return Assistant.from_index(index, embedder, memory_settings(folder, **overrides))


@contextmanager
def serving(folder: Path, users: str = "", texts: dict[str, str] | None = None, evaluation: bool = False,
            **overrides: Any) -> Iterator[tuple[str, Any]]:
    """The app on a free loopback port (with ``users`` as ``auth``), closed when the block ends."""
    from ui.access import parse_auth
    from ui.app import build_app, launch

    assistant = fast_assistant(folder, texts, **overrides)
    demo = build_app(assistant, assistant.settings, evaluation=evaluation)
    _, url, _ = launch(demo, port=free_port(), auth=parse_auth(users) or None, prevent_thread_lock=True, quiet=True,
                       corpus_dir=assistant.settings.corpus_dir, max_file_size=assistant.settings.max_document_bytes)
    try:
        yield url, assistant
    finally:
        demo.close()


def sign_in(http: httpx.Client, user: str, password: str, **headers: str) -> int:
    return http.post("/login", data={"username": user, "password": password}, headers=headers).status_code


def run_event(http: httpx.Client, name: str, data: list, timeout: float = 60, session: str | None = None) -> dict:
    """Run one of the page's handlers as the page does (``/gradio_api/queue/join`` with its index,
    then the session's event stream) in ``session`` (a page load; default: a new one); returns the
    ``process_completed`` message."""
    config = http.get("/config").json()
    (fn_index,) = [d["id"] for d in config["dependencies"] if d["api_name"] == name]
    session = session or uuid.uuid4().hex
    joined = http.post("/gradio_api/queue/join", json={"data": data, "fn_index": fn_index, "session_hash": session,
                                                       "event_data": None, "trigger_id": None})
    assert joined.status_code == 200, joined.text
    with http.stream("GET", "/gradio_api/queue/data", params={"session_hash": session}, timeout=timeout) as stream:
        for line in stream.iter_lines():
            if line.startswith("data:"):
                message = json.loads(line[5:])
                if message.get("msg") == "process_completed":
                    return message
    raise AssertionError(f"{name}: no result")


def call_named(http: httpx.Client, name: str, data: list, timeout: float = 60) -> tuple[str, Any]:
    """``/gradio_api/call/<name>`` then its result stream: (event, data)."""
    started = http.post(f"/gradio_api/call/{name}", json={"data": data})
    assert started.status_code == 200, started.text
    event = None
    with http.stream("GET", f"/gradio_api/call/{name}/{started.json()['event_id']}", timeout=timeout) as stream:
        for line in stream.iter_lines():
            if line.startswith("event:"):
                event = line.split(":", 1)[1].strip()
            elif line.startswith("data:") and event in ("complete", "error"):
                return event, json.loads(line[5:])
    raise AssertionError(f"{name}: no result")


# -- point 3: the owner cannot be locked out -------------------------------------------------------
def test_wrong_passwords_from_elsewhere_never_lock_the_owner_out(tmp_path: Path) -> None:
    """Issue 26.3: wrong passwords for « alice » from another address, one per expiry, kept her
    correct password at 429 everywhere. Counted per address and name together, her own address
    (where she signed in before) stays open to her, across a restart too."""
    from ui.access import LoginThrottle

    now = [1000.0]
    known = tmp_path / "sign-ins.json"
    throttle = LoginThrottle(fake_gradio_login, free_attempts=2, base_delay=10, max_delay=900, clock=lambda: now[0],
                             known_path=known)
    attempt = login_attempts(throttle)
    assert attempt("alice", "good", "10.0.0.1")[0] == 200  # her office
    for _ in range(12):  # the attacker: one wrong try per expiry, for hours
        status, headers = attempt("alice", "bad", "203.0.113.9")
        assert status in (400, 429)
        assert attempt("alice", "good", "10.0.0.1")[0] == 200, "the owner's correct password, from her own address"
        if status == 429:
            now[0] += int(headers[b"retry-after"]) + 1
    status, headers = attempt("alice", "good", "203.0.113.9")
    assert status == 429 and int(headers[b"retry-after"]) > 10  # the attacker's address stays held back
    assert attempt("carol", "bad", "203.0.113.9")[0] == 429  # and so does any name tried from it
    # After a restart (a new throttle, the same file) her address is still hers.
    restarted = LoginThrottle(fake_gradio_login, free_attempts=2, base_delay=10, clock=lambda: now[0], known_path=known)
    attempt = login_attempts(restarted)
    for _ in range(3):
        attempt("alice", "bad", "203.0.113.9")
    assert attempt("alice", "good", "198.51.100.7")[0] == 429  # a new place waits (guessing from many addresses)
    assert attempt("alice", "good", "10.0.0.1")[0] == 200
    assert "alice" not in known.read_text()  # pairs are kept hashed


def test_a_neighbour_on_the_same_address_cannot_lock_the_owner_out() -> None:
    from ui.access import LoginThrottle

    now = [0.0]
    attempt = login_attempts(LoginThrottle(fake_gradio_login, free_attempts=2, base_delay=10, clock=lambda: now[0]))
    assert attempt("alice", "good", "10.0.0.1")[0] == 200
    for name in ("bob", "carol", "dave"):  # names tried one after the other from the shared address
        attempt(name, "bad", "10.0.0.1")
    assert attempt("erin", "good", "10.0.0.1")[0] == 429
    assert attempt("alice", "good", "10.0.0.1")[0] == 200  # she signed in from there before


# -- point 4: request sizes limited before reading -----------------------------------------------------
def test_request_bodies_are_limited_before_they_are_read(tmp_path: Path) -> None:
    """Issue 26.4: /login read a 100 MB body before checking it, /ask parsed 200 MB questions.
    Every body is refused with 413 past its route's limit, announced or streamed."""
    with serving(tmp_path, users="alice:s3cret", admins="alice", max_upload_bytes=200_000,
                 max_request_bytes=300_000, max_api_request_bytes=50_000) as (url, _):
        with httpx.Client(base_url=url, timeout=60) as http:
            big_login = {"username": "alice", "password": "x" * 2_000_000}
            refused = http.post("/login", data=big_login)
            assert refused.status_code == 413 and "connexion" in refused.json()["detail"]

            def chunks(total: int, size: int = 65_536):
                yield b"username=alice&password="
                for _ in range(total // size):
                    yield b"x" * size

            streamed = http.post("/login", content=chunks(3_000_000),
                                 headers={"content-type": "application/x-www-form-urlencoded"})
            assert streamed.status_code == 413  # no Content-Length: counted as it arrives
            assert sign_in(http, "alice", "s3cret") == 200  # a real sign-in still passes

            question = http.post("/gradio_api/call/ask", json={"data": ["Quand ? " + "x" * 60_000, []]})
            assert question.status_code == 413 and "historique" in question.json()["detail"]
            history = [{"role": "user", "content": "y" * 1_000}] * 80
            assert http.post("/gradio_api/call/ask", json={"data": [QUESTION, history]}).status_code == 413
            assert call_named(http, "ask", [QUESTION, history[:8]])[0] == "complete"  # within the limit

            page = http.post("/gradio_api/queue/join", content=chunks(1_000_000),
                             headers={"content-type": "application/json"})
            assert page.status_code == 413 and "Requête trop volumineuse" in page.json()["detail"]

            upload = http.post("/gradio_api/upload", files={"files": ("grand.txt", b"mot " * 100_000, "text/plain")})
            assert upload.status_code == 413 and "Envoi" in upload.json()["detail"]
            small = http.post("/gradio_api/upload", files={"files": ("petit.txt", b"mot " * 100, "text/plain")})
            assert small.status_code == 200


def test_body_limit_answers_413_even_when_the_app_swallows_the_interrupted_read() -> None:
    from ui.access import BodyLimit

    async def app(scope, receive, send):  # an app that turns any read error into a 400 of its own
        try:
            while (await receive()).get("more_body"):
                pass
            status = 200
        except Exception:  # noqa: BLE001
            status = 400
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"x"})

    async def run(parts: list[bytes], headers: list) -> list[dict]:
        sent, queue = [], list(parts)

        async def receive():
            body = queue.pop(0)
            return {"type": "http.request", "body": body, "more_body": bool(queue)}

        async def send(message):
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/gradio_api/queue/join", "headers": headers}
        await BodyLimit(app, default=1000)(scope, receive, send)
        return sent

    assert asyncio.run(run([b"a" * 600, b"a" * 600], []))[0]["status"] == 413
    assert asyncio.run(run([b"a" * 600], [(b"content-length", b"5000")]))[0]["status"] == 413
    assert asyncio.run(run([b"a" * 600], [(b"content-length", b"abc")]))[0]["status"] == 413
    assert asyncio.run(run([b"a" * 600, b"a" * 300], []))[0]["status"] == 200


# -- point 7: only /ask and /run_eval by name ----------------------------------------------------------
def test_internal_handlers_are_not_reachable_by_name(tmp_path: Path) -> None:
    """Issue 26.7: POST /gradio_api/run/library_view returned the library table, /gradio_api/api/<name>
    reached on_load, idle, upload, remove, respond, skipping the queue. Only /ask and /run_eval
    answer by name, through the queue, whatever the route form."""
    with serving(tmp_path, evaluation=True) as (url, _):
        with httpx.Client(base_url=url, timeout=60) as http:
            config = http.get("/config").json()
            index_of = {d["api_name"]: d["id"] for d in config["dependencies"]}
            for name in ("library_view", "on_load", "idle", "upload", "remove", "respond", "reindex", "identify"):
                for form in (f"/gradio_api/run/{name}", f"/gradio_api/api/{name}", f"/gradio_api/run/{name}/",
                             f"/gradio_api/api/{name}/", f"/gradio_api/call/{name}", f"/gradio_api/call/v2/{name}",
                             f"/gradio_api/call/{name}/", f"/run/{name}", f"/api/{name}", f"/call/{name}"):
                    answer = http.post(form, json={"data": [], "fn_index": index_of[name]})
                    assert answer.status_code == 404, (form, answer.status_code, answer.text[:200])
                    assert "ia-library" not in answer.text
            # The page's own form for its unqueued handlers takes no queued one (the library, an answer).
            for name in ("library_view", "respond", "upload"):
                direct = http.post("/gradio_api/run/predict", json={"data": [], "fn_index": index_of[name],
                                                                    "session_hash": "s"})
                assert direct.status_code == 404 and "ia-library" not in direct.text, (name, direct.text[:200])
            # /ask through the queue, in both forms; never straight to the handler.
            assert http.post("/gradio_api/run/ask", json={"data": [QUESTION, []]}).status_code == 404
            assert http.post("/gradio_api/api/ask", json={"data": [QUESTION, []]}).status_code == 404
            assert call_named(http, "ask", [QUESTION, []])[0] == "complete"
            v2 = http.post("/gradio_api/call/v2/ask", json={"question": QUESTION, "history": []})
            assert v2.status_code == 200 and v2.json()["event_id"]
            # The page still works: an unqueued handler by index, a queued one through the queue.
            idle = http.post("/gradio_api/run/predict", json={"data": [], "fn_index": index_of["idle"], "session_hash": "s"})
            assert idle.status_code == 200, idle.text
            assert "ia-library" in run_event(http, "library_view", [])["output"]["data"][0]


# -- point 8: the browser key never leaves the server --------------------------------------------------
def test_browser_key_never_leaves_the_server_and_ids_cannot_be_forged(tmp_path: Path) -> None:
    """Issue 26.8: the key sealing the browser id was sent to every visitor in /config, and a client
    presenting another browser's id read that browser's conversations (localhost, no sign-in)."""
    from assistant.conversations import ConversationStore

    with serving(tmp_path) as (url, assistant):
        key = (Path(assistant.settings.data_dir) / "browser-secret").read_text(encoding="ascii").strip()
        with httpx.Client(base_url=url, timeout=60) as http:
            for path in ("/config", "/", "/gradio_api/info"):
                assert key not in http.get(path).text, path
            # A browser's own sealed id finds its conversations.
            first = run_event(http, "identify", [None])["output"]["data"]
            sealed = first[0]
            assert isinstance(sealed, str) and key not in sealed and first[1]["choices"] == []
            conversations = ConversationStore.in_dir(assistant.settings.data_dir)
            browser_id = sealed.split(".")[0]
            turn = {"question": QUESTION, "history": [], "answer": {"text": "Le 12 mars 2024.", "citations": []}}
            conversations.save(f"browser:{browser_id}", "conv-a", [turn])
            again = run_event(http, "identify", [sealed])["output"]["data"]
            assert again[0] == sealed and [c[1] for c in again[1]["choices"]] == ["conv-a"]
            # Another client presenting that id (bare, or with any seal but the server's) opens nothing.
            for forged in (browser_id, f"{browser_id}.{'0' * 32}", f"{browser_id}.{sealed.split('.')[1][:-1]}x"):
                other = run_event(http, "identify", [forged])["output"]["data"]
                assert other[1]["choices"] == [] and other[0] != forged, forged
                opened = run_event(http, "open_conversation", ["conv-a", forged])
                assert "12 mars 2024" not in json.dumps(opened, ensure_ascii=False), opened


# -- point 9: X-Forwarded-For only from configured proxies ---------------------------------------------
def test_forwarded_for_is_believed_only_from_trusted_proxies(tmp_path: Path) -> None:
    """Issue 26.9: a client on 127.0.0.1 chose, with X-Forwarded-For, the address the throttle counts."""
    with serving(tmp_path / "a", users="alice:s3cret,bob:b0b,carol:c4rol") as (url, _):
        with httpx.Client(base_url=url, timeout=30) as http:
            for number in range(5):  # each "from" another address
                assert sign_in(http, "bob", "faux", **{"X-Forwarded-For": f"10.1.1.{number}"}) == 400
            # They all came from 127.0.0.1: the address is held back, whatever it claims.
            assert sign_in(http, "carol", "faux") == 429
            assert sign_in(http, "carol", "faux", **{"X-Forwarded-For": "10.9.9.9"}) == 429
    with serving(tmp_path / "b", users="alice:s3cret,bob:b0b,carol:c4rol", trusted_proxies="127.0.0.1") as (url, _):
        with httpx.Client(base_url=url, timeout=30) as http:
            assert sign_in(http, "alice", "s3cret", **{"X-Forwarded-For": "10.0.0.1"}) == 200  # her office
            for _ in range(6):  # behind the proxy: an attacker elsewhere
                assert sign_in(http, "alice", "faux", **{"X-Forwarded-For": "203.0.113.9"}) in (400, 429)
            assert sign_in(http, "carol", "faux", **{"X-Forwarded-For": "203.0.113.9"}) == 429
            assert sign_in(http, "carol", "faux", **{"X-Forwarded-For": "10.0.0.2"}) == 400  # another client
            assert sign_in(http, "alice", "s3cret", **{"X-Forwarded-For": "10.0.0.1"}) == 200  # point 3, end to end


def test_trusted_proxies_are_checked() -> None:
    from assistant.errors import AssistantError
    from ui.access import check_proxies, parse_names

    assert check_proxies(parse_names(" 127.0.0.1, 10.0.0.0/8 ,::1")) == ["127.0.0.1", "10.0.0.0/8", "::1"]
    assert parse_names("") == []
    with pytest.raises(AssistantError, match="trusted_proxies"):
        check_proxies(["proxy.example"])


# -- point 10: file names as text, links that open their file ------------------------------------------
EVIL_NAME = "[Reconnectez-vous ici](https:evil.example).pdf"


def test_file_names_are_shown_as_text_everywhere(tmp_path: Path) -> None:
    """Issue 26.10: a file name was rendered as Markdown in the re-index message
    (« [Reconnectez-vous ici](https:evil.example).pdf » became a live link)."""
    from markdown_it import MarkdownIt

    from ui import render
    from ui.eval_tab import md_code, run_evaluation

    with serving(tmp_path) as (url, assistant):
        (Path(assistant.settings.corpus_dir) / EVIL_NAME).write_bytes(b"%PDF-1.4 pas vraiment un PDF")
        with httpx.Client(base_url=url, timeout=60) as http:
            config = http.get("/config").json()
            (message_box,) = [c for c in config["components"] if c.get("props", {}).get("elem_id") == "library-message"]
            assert message_box["type"] == "html"  # not Markdown
            done = run_event(http, "reindex", [])
            assert done["success"], done
            message = done["output"]["data"][-1]
            message = message["value"] if isinstance(message, dict) else message
            assert "Reconnectez-vous ici" in message and "laissé(s) de côté" in message
            assert "<a" not in message and "href" not in message
            assert "[Reconnectez-vous ici](https:evil.example).pdf" in message.replace("&#x27;", "'")
    shown = render.message_html(f"Ajouté(s) : {EVIL_NAME} <img src=x>")
    assert "<img" not in shown and "<a" not in shown and shown.startswith('<p class="ia-library-message">')
    markdown = MarkdownIt("commonmark", {"html": True})
    for name in (EVIL_NAME, "**gras** <img src=x onerror=alert(1)> `a``b` $$x$$.jsonl", "# titre.jsonl"):
        rendered = markdown.render(f"Jeu « {md_code(name)} » invalide")
        assert "<a" not in rendered and "<img" not in rendered and "<strong" not in rendered and "<h1" not in rendered
        assert rendered.count("<code>") == 1, rendered
    # The Évaluation tab names the dataset the same way.
    bad = tmp_path / "[Reconnectez-vous ici](https:evil.example).jsonl"
    bad.write_text('{"id": "a", "question": "Q ?"}\n{cassé\n', encoding="utf-8")
    status = run_evaluation(None, None, str(bad), False, ["extractive"])["status"]
    assert "<a" not in markdown.render(status) and "Reconnectez-vous ici" in markdown.render(status)


def test_document_links_with_percent_signs_and_absurd_paths(tmp_path: Path) -> None:
    """Issue 26.10: a name holding « %20 » got a broken link (decoded twice); a 3,000-level path
    answered 500 instead of 404."""
    from ui.files import document_link

    texts = {"note.md": NOTE, "rapport%20final.md": "# Rapport final\n\nLe rapport final date de 2024.\n",
             "rapport final.md": "# Autre rapport\n\nUn autre fichier, au nom avec une espace.\n"}
    with serving(tmp_path, texts=texts) as (url, _):
        with httpx.Client(base_url=url, timeout=30) as http:
            link = document_link("rapport%20final.md")
            assert link == "documents/rapport%2520final.md"
            opened = http.get("/" + link)
            assert opened.status_code == 200 and "Le rapport final date de 2024" in opened.text
            spaced = http.get("/" + document_link("rapport final.md"))
            assert spaced.status_code == 200 and "au nom avec une espace" in spaced.text
            deep = http.get("/documents/" + "a/" * 3000 + "note.md")
            assert deep.status_code == 404
            long_name = http.get("/documents/" + "b" * 5000 + ".md")
            assert long_name.status_code == 404


# -- point 12: k and mode checked by the CLI and the API ------------------------------------------------
@pytest.mark.parametrize("argv", [["ask", "-k", "0", QUESTION], ["ask", "-k", "-3", QUESTION]])
def test_cli_refuses_a_k_below_one(argv: list[str], capsys: pytest.CaptureFixture,
                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 26.12: `assistant ask -k 0` (and -k -3) ran. Refused before anything loads, exit 2."""
    from assistant import Assistant
    from assistant.cli import EXIT_USAGE, main

    def must_not_load(*args, **kwargs):
        raise AssertionError("the model and index were loaded for a refused command")

    monkeypatch.setattr(Assistant, "load", must_not_load)
    assert main(argv) == EXIT_USAGE
    err = capsys.readouterr().err
    assert "Erreur" in err and "entier positif" in err


def test_api_search_checks_k_and_mode(tmp_path: Path) -> None:
    """Issue 26.12: `Assistant.search(q, mode="evil")` returned passages."""
    assistant = fast_assistant(tmp_path)
    with pytest.raises(ValueError, match="mode doit être hybrid, dense ou bm25"):
        assistant.search(QUESTION, mode="evil")
    for bad in (0, -3, 2.5, "5", True):
        with pytest.raises(ValueError, match="entier positif"):
            assistant.search(QUESTION, k=bad)
    for mode in ("hybrid", "dense", "bm25", None):
        assert assistant.search(QUESTION, k=2, mode=mode)
    with pytest.raises(ValueError, match="top_k"):
        assistant.variant(top_k=0).ask(QUESTION)
