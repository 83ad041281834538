"""The Gradio app through gradio_client (the /ask endpoint), its HTML, access control, and launch hygiene."""

from __future__ import annotations

import re

import ipaddress
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from assistant.engines.compose import ABSTENTION
from assistant.errors import AssistantError
from ui import render
from ui.access import check_exposure, is_loopback, parse_auth

from .conftest import free_port
from .fakes import fake_gradio_login, login_attempts

pytestmark = pytest.mark.slow

BARKHANE = "Quand l'opération Barkhane s'est-elle retirée du Mali ?"
BARKHANE_EVIDENCE = "L’opération Barkhane s’est définitivement retirée du Mali le 15 août 2022"
MINUSMA = "Quand le mandat de la MINUSMA a-t-il pris fin ?"
FOLLOW_UP = "Et qui l'a décidé ?"
ABSENT = "Quel est le budget du programme ?"
ANSWER_KEYS = {"text", "citations", "abstained", "query", "question", "language", "engine", "timings",
               "retrieved", "notices", "spans", "markdown", "confidence", "conversational", "certainty"}
CITATION_KEYS = {"number", "text", "document", "title", "source", "section", "start", "end", "score",
                 "highlights", "quotes", "page", "url"}



@pytest.fixture(scope="module")
def served(assistant, settings):
    from ui.app import build_app, launch

    demo = build_app(assistant, settings)
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True, corpus_dir=settings.corpus_dir)
    yield url
    demo.close()


@pytest.fixture(scope="module")
def client(served):
    from gradio_client import Client

    return Client(served, verbose=False)


# -- /ask through gradio_client -----------------------------------------------------------------
def test_french_question_cites_the_evidence(client) -> None:
    answer = client.predict(BARKHANE, [], api_name="/ask")
    assert not answer["abstained"] and "15 août 2022" in answer["text"]
    assert answer["citations"] and any(BARKHANE_EVIDENCE in c["text"] for c in answer["citations"])
    assert any(BARKHANE_EVIDENCE in q for c in answer["citations"] for q in c["quotes"])
    markers = {int(n) for n in __import__("re").findall(r"\[(\d+)\]", answer["text"])}
    assert markers == {c["number"] for c in answer["citations"]}


def test_follow_up_uses_the_history(client) -> None:
    first = client.predict(MINUSMA, [], api_name="/ask")
    history = [{"role": "user", "content": MINUSMA}, {"role": "assistant", "content": first["text"]}]
    follow = client.predict(FOLLOW_UP, history, api_name="/ask")
    assert "MINUSMA" in follow["query"]  # the standalone query was completed from the history
    assert not follow["abstained"] and "Conseil de sécurité" in follow["text"]
    alone = client.predict(FOLLOW_UP, [], api_name="/ask")
    assert "MINUSMA" not in alone["query"]
    # Gradio-style content blocks are accepted too.
    blocks = [{"role": t["role"], "content": [{"type": "text", "text": t["content"]}]} for t in history]
    assert client.predict(FOLLOW_UP, blocks, api_name="/ask")["query"] == follow["query"]


def test_absent_fact_abstains_without_citations(client) -> None:
    answer = client.predict(ABSENT, [], api_name="/ask")
    assert answer["abstained"] and answer["citations"] == [] and answer["text"] == ABSTENTION["fr"]


def test_ask_returns_the_documented_dict(client, assistant) -> None:
    answer = client.predict(BARKHANE, [], api_name="/ask")
    assert set(answer) == ANSWER_KEYS == set(assistant.ask(BARKHANE).to_dict())
    assert set(answer["citations"][0]) == CITATION_KEYS
    assert answer["question"] == BARKHANE and answer["engine"] == "extractive" and answer["language"] == "fr"
    assert isinstance(answer["timings"]["total_ms"], float) and isinstance(answer["retrieved"], list)


def test_chat_events_are_not_public_endpoints(client) -> None:
    api = client.view_api(return_format="dict", print_info=False)
    # /ask, plus the Évaluation tab's own /run_eval; the chat's internal events stay private.
    assert "/ask" in api["named_endpoints"] and set(api["named_endpoints"]) <= {"/ask", "/run_eval"}
    assert not api["unnamed_endpoints"]
    assert [p["parameter_name"] for p in api["named_endpoints"]["/ask"]["parameters"]] == ["question", "history"]


def test_ask_rejects_bad_input_with_a_french_message(client) -> None:
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match="vide"):
        client.predict("   ", [], api_name="/ask")
    with pytest.raises(AppError, match="role"):
        client.predict(BARKHANE, [{"role": "<b>system</b>", "content": "x"}], api_name="/ask")


# -- HTML built from answers and passages -------------------------------------------------------
def test_answer_html_marks_cites_and_escapes(assistant) -> None:
    html = render.answer_html(assistant.ask(BARKHANE).to_dict())
    marker = re.search(r'<a class="ia-marker" href="#(ia-src-\w+-1)" title="Programme Mali — Interpeace et IMRAP › Contexte">\[1\]</a>', html)
    assert marker and f'<li class="ia-source" id="{marker.group(1)}">' in html  # the marker leads to its source
    assert html.count('<li class="ia-source"') == 1 and "<details class=\"ia-sources\">" in html
    assert "<mark>L’opération Barkhane s’est définitivement retirée du Mali le 15 août 2022" in html
    assert "Voir le paragraphe entier" in html and "ia-abstention" not in html


def test_sources_link_to_the_original_file_served_read_only(assistant, served) -> None:
    html = render.answer_html(assistant.ask(BARKHANE).to_dict())
    link = __import__("re").search(r'<a class="ia-open" href="([^"]+)" target="_blank"', html)
    assert link and link.group(1) == "documents/interpeace-mali-programme.txt"
    with httpx.Client(base_url=served, timeout=30) as http:
        opened = http.get("/" + link.group(1))
        assert opened.status_code == 200 and BARKHANE_EVIDENCE in opened.text
        assert opened.headers["x-content-type-options"] == "nosniff" and "sandbox" in opened.headers["content-security-policy"]
        assert http.post("/" + link.group(1)).status_code == 405
        for outside in ("/documents/..%2Fpyproject.toml", "/documents/%2Fetc%2Fpasswd", "/documents/manifest.toml",
                        "/documents/absent.txt"):
            assert http.get(outside).status_code == 404, outside
    web = render.sources_html([{"number": 1, "title": "t", "source": "a.html", "url": "https://exemple.org/a?x=1&y=2",
                                "text": "x", "start": 0, "end": 1}])
    assert 'href="https://exemple.org/a?x=1&amp;y=2"' in web and "ouvrir la page" in web
    pdf = render.sources_html([{"number": 1, "title": "t", "source": "dossier/rapport 2024.pdf", "page": 3,
                                "text": "x", "start": 0, "end": 1}])
    assert 'href="documents/dossier/rapport%202024.pdf#page=3"' in pdf


def test_answer_span_is_highlighted_and_escaped(assistant) -> None:
    answer = assistant.variant(answer_scorer="calibrated").ask(BARKHANE).to_dict()
    assert answer["spans"], "the calibrated scorer marks the asked date"
    html = render.answer_html(answer)
    start, end = answer["spans"][0]
    assert f'<strong class="ia-span">{render.esc(answer["text"][start:end])}</strong>' in html
    evil = {"text": "<b>x</b> le 5 mai [1]", "spans": [[0, 8]], "abstained": False, "citations": []}
    assert '<strong class="ia-span">&lt;b&gt;x&lt;/b&gt;</strong> le 5 mai' in render.answer_html(evil)


def test_abstention_looks_different(assistant) -> None:
    html = render.answer_html(assistant.ask(ABSENT).to_dict())
    assert "ia-abstention" in html and "ia-sources" not in html and "ia-marker" not in html
    assert "gestionnaire du programme" in html and "reformuler" in html


def test_hostile_text_is_inert() -> None:
    evil = '<script>alert(1)</script><img src=x onerror=alert(1)> </details></ol> **gras** [x](javascript:alert(1))'
    answer = {"text": f"{evil} [1]", "abstained": False, "notices": [evil], "citations": [{
        "number": 1, "text": f"Avant. {evil} Après.", "start": 100, "end": 100 + len(evil) + 14,
        "highlights": [[107, 107 + len(evil)]], "quotes": [evil], "title": evil, "section": evil,
        "source": evil, "document": "d"}]}
    html = render.answer_html(answer) + render.user_html(evil) + render.header_html([evil])
    html += render.section_html(evil, evil, [evil]) + render.status_html({"embedding_model": evil}, evil)
    html += render.library_html([{"source": evil, "title": evil, "status": "failed", "reason": evil},
                                 {"source": evil, "title": evil, "status": evil, "pages": 2, "chunks": 3}])
    html += render.sources_html([{"number": 1, "title": "t", "source": "a.txt", "url": "javascript:alert(1)", "text": "x"}])
    for dangerous in ("<script", "<img", "</details></ol>", 'onerror=alert(1)>', '"javascript:', "<td><script"):
        assert dangerous not in html
    assert "&lt;img src=x onerror=alert(1)&gt;" in html
    assert html.count("<details") == html.count("</details>") == 4  # the layout is ours alone
    passage = render.marked_passage(answer["citations"][0])
    assert passage.startswith("Avant. <mark>&lt;script&gt;") and passage.endswith("</mark> Après.")


def test_outline_groups_passages_by_document_and_section(assistant) -> None:
    outline = render.outline(assistant.index.chunks)
    sections = outline["Programme Mali — Interpeace et IMRAP"]
    assert list(sections)[:2] == ["Contexte", "But"] and "Initiatives" in sections
    assert any("Voix des femmes" in text for text in sections["Initiatives"])


# -- access ---------------------------------------------------------------------------------------
def test_parse_auth_inline_and_file(tmp_path: Path) -> None:
    assert parse_auth("") == []
    assert parse_auth("alice:s3cret, bob:a:b") == [("alice", "s3cret"), ("bob", "a:b")]
    path = tmp_path / "users.txt"
    path.write_text("# équipe\nalice:mot,de,passe\n\ncarol:x\n", encoding="utf-8")
    assert parse_auth(str(path)) == [("alice", "mot,de,passe"), ("carol", "x")]
    for bad in ("alice", "alice:", ":pw", str(tmp_path / "missing.txt")):
        with pytest.raises(AssistantError):
            parse_auth(bad)


def test_exposure_needs_auth() -> None:
    assert is_loopback("127.0.0.1") and is_loopback("localhost") and is_loopback("::1")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.10") and not is_loopback("monserveur")
    check_exposure("127.0.0.1", [])
    check_exposure("0.0.0.0", [("alice", "s3cret")])
    with pytest.raises(AssistantError, match="authentification"):
        check_exposure("0.0.0.0", [])


def test_serve_on_all_interfaces_without_auth_is_refused(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ASSISTANT_")}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "assistant.cli", "serve", "--host", "0.0.0.0", "--port",
                           str(free_port())], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert "Refus" in done.stderr and "authentification" in done.stderr and "ASSISTANT_AUTH" in done.stderr
    assert time.perf_counter() - started < 30  # refused before loading anything


def test_auth_when_configured(assistant, settings) -> None:
    from gradio_client import Client

    from ui.app import build_app, launch

    demo = build_app(assistant, settings)
    _, url, _ = launch(demo, port=free_port(), auth=parse_auth("alice:s3cret"), prevent_thread_lock=True, quiet=True)
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            assert http.get("/config").status_code == 401
            assert http.post("/login", data={"username": "alice", "password": "faux"}).status_code >= 400
            assert http.get("/config").status_code == 401
            assert http.post("/login", data={"username": "alice", "password": "s3cret"}).status_code == 200
            assert http.get("/config").status_code == 200
        with pytest.raises(Exception):
            Client(url, auth=("alice", "faux"), verbose=False)
        answer = Client(url, auth=("alice", "s3cret"), verbose=False).predict(BARKHANE, [], api_name="/ask")
        assert not answer["abstained"]
    finally:
        demo.close()


# -- launch hygiene -------------------------------------------------------------------------------
def test_launch_makes_no_outbound_call(assistant, settings, monkeypatch: pytest.MonkeyPatch) -> None:
    """Analytics off, no version check, no Hub look-up: every connection and name look-up is local."""
    from ui.app import build_app, launch

    assert os.environ.get("GRADIO_ANALYTICS_ENABLED") == "False"
    contacted: list[str] = []
    real_connect, real_getaddrinfo = socket.socket.connect, socket.getaddrinfo

    def connect(sock, address):
        contacted.append(address[0] if isinstance(address, tuple) else str(address))
        return real_connect(sock, address)

    def getaddrinfo(host, *args, **kwargs):
        contacted.append(host.decode() if isinstance(host, bytes) else str(host))
        return real_getaddrinfo(host, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    demo = build_app(assistant, settings)
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            page = http.get("/")
            assert page.status_code == 200 and "fonts.googleapis" not in page.text
            assert http.get("/config").status_code == 200
        time.sleep(2)  # leave background threads (analytics, version checks) time to run
    finally:
        demo.close()

    def local(host: str) -> bool:
        try:
            return ipaddress.ip_address(host).is_loopback or ipaddress.ip_address(host).is_unspecified
        except ValueError:
            return host in {"localhost", "None", ""} or host.startswith("/")

    assert contacted and [h for h in contacted if not local(h)] == []


def test_login_attempts_are_throttled(assistant, settings) -> None:
    """Five wrong passwords, then HTTP 429 with Retry-After, even for the right password, until the delay passes."""
    from ui.app import build_app, launch

    demo = build_app(assistant, settings)
    _, url, _ = launch(demo, port=free_port(), auth=parse_auth("alice:s3cret"), prevent_thread_lock=True, quiet=True)
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            codes = [http.post("/login", data={"username": "alice", "password": f"faux{i}"}).status_code
                     for i in range(5)]
            assert codes == [400] * 5
            refused = http.post("/login", data={"username": "alice", "password": "s3cret"})
            assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
            assert "réessayez" in refused.json()["detail"]
            other = http.post("/login", data={"username": "bob", "password": "x"})
            assert other.status_code == 429, "the address is held back too, whatever the user name"
            time.sleep(int(refused.headers["retry-after"]) + 0.2)
            assert http.post("/login", data={"username": "alice", "password": "s3cret"}).status_code == 200
            assert http.get("/config").status_code == 200
    finally:
        demo.close()


def test_only_documented_endpoints_are_callable_and_cancel_needs_sign_in(assistant, settings) -> None:
    from ui.app import build_app, launch

    demo = build_app(assistant, settings)
    _, url, _ = launch(demo, port=free_port(), auth=parse_auth("alice:s3cret"), prevent_thread_lock=True, quiet=True)
    try:
        with httpx.Client(base_url=url, timeout=30) as http:
            cancel = {"session_hash": "x", "fn_index": 0, "event_id": "y"}
            assert http.post("/gradio_api/cancel", json=cancel).status_code == 401
            assert http.post("/login", data={"username": "alice", "password": "s3cret"}).status_code == 200
            for name in ("respond", "on_like", "on_comment", "take_question"):
                assert http.post(f"/gradio_api/call/{name}", json={"data": []}).status_code == 404, name
            assert http.post("/gradio_api/call/ask", json={"data": [BARKHANE, []]}).status_code == 200
            assert http.post("/gradio_api/cancel", json=cancel).status_code == 200
    finally:
        demo.close()


def test_throttle_delay_doubles_per_user_and_address() -> None:
    from ui.access import LoginThrottle

    now = [1000.0]
    throttle = LoginThrottle(fake_gradio_login, free_attempts=2, base_delay=10, clock=lambda: now[0])
    attempt = login_attempts(throttle)

    assert attempt("alice", "bad", "10.0.0.1")[0] == 400
    assert attempt("alice", "bad", "10.0.0.2")[0] == 400  # second failure for alice: locked 10 s
    status, headers = attempt("alice", "good", "10.0.0.3")
    assert status == 429 and headers[b"retry-after"] == b"10"  # per user name, from any address
    assert attempt("carol", "good", "10.0.0.4")[0] == 200  # others are not affected
    now[0] += 11
    assert attempt("alice", "bad", "10.0.0.5")[0] == 400  # third failure: 20 s
    status, headers = attempt("alice", "good", "10.0.0.6")
    assert status == 429 and headers[b"retry-after"] == b"20"
    now[0] += 21
    assert attempt("alice", "good", "10.0.0.7")[0] == 200
    assert attempt("alice", "bad", "10.0.0.8")[0] == 400  # a success cleared the count
    assert attempt("alice", "good", "10.0.0.9")[0] == 200


def test_a_long_question_is_shown_as_far_as_it_was_read() -> None:
    shown = render.user_html("mot " * 12_500, limit=1_000)
    assert shown.count("mot") <= 250 and "Seuls les 1000 premiers caractères (sur 50000) ont été lus." in shown
    assert render.user_html("Quand ?", limit=1_000) == '<div class="ia-question">Quand ?</div>'


def test_english_answer_frame_is_english() -> None:
    abstention = render.answer_html({"abstained": True, "language": "en", "text": "I could not find this information."})
    assert "Try rephrasing your question" in abstention and "Essayez" not in abstention
    answer = render.answer_html({"abstained": False, "language": "en", "text": "En 2015. [1]", "citations": [
        {"number": 1, "text": "En 2015.", "title": "T", "section": "S", "source": "t.txt", "start": 0, "end": 8,
         "quotes": ["En 2015."], "highlights": [[0, 8]]}]})
    assert "Show the whole paragraph" in answer and "Voir le paragraphe" not in answer
