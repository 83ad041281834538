"""Issue 26.5: administrators (setting ``admins``) alone see and use upload, removal, re-indexing,
evaluation and the audit log, hidden in the page and refused by the server; the audit log is
append-only and exported as CSV. Without sign-in (localhost) the local user is an administrator.

Over an in-memory index with the small embedder (no model); servers on 127.0.0.1, closed by the
tests."""

from __future__ import annotations

import csv
import io
import sqlite3
from pathlib import Path

import httpx
import pytest

from .test_web_hardening import NOTE, QUESTION, call_named, run_event, serving, sign_in

RADIO = "# Radio de Gao\n\nLa radio de Gao diffuse l'émission Paroles de paix chaque mardi soir.\n"
USERS = "alice:a11ce,bob:b0b"


def _visible(update: dict) -> bool:
    return bool(update.get("visible"))


def _refused(message: dict) -> bool:
    return not message["success"] and "administrateurs" in (message["output"].get("error") or "")


def test_only_administrators_manage_documents_run_evaluations_and_read_the_log(tmp_path: Path) -> None:
    texts = {"note.md": NOTE, "radio.md": RADIO}
    with serving(tmp_path, users=USERS, texts=texts, evaluation=True, admins="alice") as (url, assistant):
        corpus = Path(assistant.settings.corpus_dir)
        with httpx.Client(base_url=url, timeout=120) as bob, httpx.Client(base_url=url, timeout=120) as alice:
            assert sign_in(bob, "bob", "b0b") == 200 and sign_in(alice, "alice", "a11ce") == 200

            # Hidden in the page: the management panel, the audit log, the Évaluation tab.
            hidden = run_event(bob, "on_load", [])["output"]["data"][2:]
            shown = run_event(alice, "on_load", [])["output"]["data"][2:]
            assert len(hidden) == len(shown) == 3
            assert not any(map(_visible, hidden)) and all(map(_visible, shown))

            # Refused by the server, whatever a client sends.
            assert _refused(run_event(bob, "upload", [[]]))
            page = "page-de-bob"  # the Documents tab opened (it fills the choices), then « Retirer »
            assert "radio.md" in run_event(bob, "library_view", [], session=page)["output"]["data"][0]
            assert _refused(run_event(bob, "remove", ["radio.md"], session=page)) and (corpus / "radio.md").exists()
            assert _refused(run_event(bob, "reindex", []))
            assert _refused(run_event(bob, "audit_view", []))
            assert _refused(run_event(bob, "audit_export", []))
            event, data = call_named(bob, "run_eval", [None, True, ["extractive"], False])
            assert event == "error" and "administrateurs" in str(data)
            files = {"files": ("ajout.md", b"# Ajout\n\nUn texte.\n", "text/markdown")}
            assert bob.post("/gradio_api/upload", files=files).status_code == 403
            assert alice.post("/gradio_api/upload", files=files).status_code == 200
            # Everyone still asks questions and reads the library.
            assert call_named(bob, "ask", [QUESTION, []])[0] == "complete"
            assert "radio.md" in run_event(bob, "library_view", [])["output"]["data"][0]

            # The administrator removes a document: done, and written in the log with the refusals.
            run_event(alice, "library_view", [], session="page-d-alice")
            removed = run_event(alice, "remove", ["radio.md"], session="page-d-alice")
            assert removed["success"], removed
            assert not (corpus / "radio.md").exists()
            log = run_event(alice, "audit_view", [])["output"]["data"][0]
            assert "retrait" in log and "radio.md" in log and "alice" in log
            assert "refus : retrait" in log and "refus : ajout" in log and "refus : évaluation" in log and "bob" in log

            exported = run_event(alice, "audit_export", [])["output"]["data"][0]
            assert _visible(exported)
            response = alice.get(exported["value"]["url"])
            assert response.status_code == 200
            rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
            assert list(rows[0]) == ["date", "utilisateur", "adresse", "action", "document", "détail"]
            done = [r for r in rows if r["action"] == "retrait"]
            assert len(done) == 1 and done[0]["utilisateur"] == "alice" and done[0]["document"] == "radio.md"
            assert done[0]["adresse"] == "127.0.0.1" and done[0]["date"][:2] == "20"
            assert {r["utilisateur"] for r in rows if r["action"].startswith("refus")} == {"bob"}


def test_without_sign_in_the_local_user_is_the_administrator(tmp_path: Path) -> None:
    with serving(tmp_path, evaluation=True) as (url, _):
        with httpx.Client(base_url=url, timeout=120) as http:
            assert all(map(_visible, run_event(http, "on_load", [])["output"]["data"][2:]))
            reindexed = run_event(http, "reindex", [])
            assert reindexed["success"] and "Index à jour" in str(reindexed["output"]["data"][-1])
            assert http.post("/gradio_api/upload", files={"files": ("a.md", b"# A\n\nB.\n", "text/markdown")}).status_code == 200
            log = run_event(http, "audit_view", [])["output"]["data"][0]
            assert "réindexation" in log and "local" in log


def test_an_administrator_s_evaluation_is_logged(tmp_path: Path) -> None:
    with serving(tmp_path, users=USERS, evaluation=True, admins="alice") as (url, assistant):
        with httpx.Client(base_url=url, timeout=300) as alice:
            assert sign_in(alice, "alice", "a11ce") == 200
            event, data = call_named(alice, "run_eval", [None, True, ["extractive"], False], timeout=300)
            assert event == "complete", data
    from ui.access import AuditLog

    (entry,) = [e for e in AuditLog.in_dir(assistant.settings.data_dir).entries() if e["action"] == "évaluation"]
    assert entry["utilisateur"] == "alice" and entry["document"] == "dev.jsonl" and "extractive" in entry["détail"]


def test_the_audit_log_is_append_only_and_its_csv_inert(tmp_path: Path) -> None:
    from ui.access import AuditLog, Roles

    log = AuditLog.in_dir(tmp_path)
    log.record("alice", "10.0.0.1", "retrait", "=HYPERLINK(\"https://evil.example\").md", "copie gardée")
    log.record("", "127.0.0.1", "réindexation")
    assert [e["action"] for e in log.entries()] == ["réindexation", "retrait"]  # most recent first
    with sqlite3.connect(log.path) as db:
        for statement in ("UPDATE audit SET user = 'mallory'", "DELETE FROM audit"):
            with pytest.raises(sqlite3.DatabaseError, match="ajout seul"):
                db.execute(statement)
    assert len(log.entries()) == 2
    rows = list(csv.reader(log.write_csv(tmp_path / "journal.csv").open(encoding="utf-8-sig")))
    assert rows[1][1:5] == ["alice", "10.0.0.1", "retrait", "'=HYPERLINK(\"https://evil.example\").md"]
    assert rows[2][1] == "local"

    class Request:
        def __init__(self, username, host):
            self.username, self.client = username, type("Client", (), {"host": host})()

    roles = Roles(" alice , carol")
    assert roles.is_admin(Request("alice", "10.0.0.1")) and not roles.is_admin(Request("bob", "127.0.0.1"))
    assert not roles.is_admin(Request("Alice", "10.0.0.1"))  # names as Gradio's sign-in compares them
    assert roles.is_admin(Request(None, "127.0.0.1")) and not roles.is_admin(Request(None, "192.168.1.5"))
    assert not Roles("").is_admin(Request("alice", "127.0.0.1")) and not roles.is_admin(None)


@pytest.mark.slow
def test_the_page_shows_management_to_administrators_only(tmp_path: Path) -> None:
    """In a real browser (Debian's chromium): bob signs in and sees no upload, removal, re-index,
    audit log nor Évaluation tab; alice sees them all."""
    from playwright.sync_api import sync_playwright

    from .test_browser import CHROMIUM, CHROMIUM_ARGS

    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium est absent : lancez `make test` (il l'installe) ou `apt-get install chromium`.")
    with serving(tmp_path, users=USERS, evaluation=True, admins="alice") as (url, _), sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            seen = {}
            for user, password in (("bob", "b0b"), ("alice", "a11ce")):
                context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
                page = context.new_page()
                page.goto(url, wait_until="load")
                page.locator("input[type=password]").wait_for()
                page.locator("input:not([type=password])").first.fill(user)
                page.locator("input[type=password]").fill(password)
                page.locator("input[type=password]").press("Enter")
                page.locator("#question textarea").wait_for(timeout=30_000)
                page.get_by_role("tab", name="Documents").click()
                page.locator("#library").get_by_text("note.md").wait_for(timeout=30_000)
                page.wait_for_timeout(500)
                seen[user] = {"upload": page.locator("#upload").is_visible(),
                              "remove": page.locator("#remove").is_visible(),
                              "reindex": page.locator("#reindex").is_visible(),
                              "audit": page.locator("#audit").is_visible(),
                              "evaluation": page.get_by_role("tab", name="Évaluation").count() > 0
                              and page.get_by_role("tab", name="Évaluation").is_visible()}
                context.close()
        finally:
            browser.close()
    assert seen["bob"] == dict.fromkeys(seen["bob"], False), seen
    assert seen["alice"] == dict.fromkeys(seen["alice"], True), seen
