"""End to end in a real browser: Debian's chromium driven by Playwright (never `playwright install`)."""

from __future__ import annotations

import json
import re
import sqlite3
import time
from pathlib import Path
from types import SimpleNamespace
from typing import Iterator

import pytest

from assistant.types import Answer, Citation, Passage
from assistant.feedback import FeedbackStore

from .conftest import free_port

pytestmark = pytest.mark.slow

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
BARKHANE = "Quand l'opération Barkhane s'est-elle retirée du Mali ?"
MINUSMA = "Quand le mandat de la MINUSMA a-t-il pris fin ?"
FOLLOW_UP = "Et qui l'a décidé ?"
XSS = "<img src=x onerror=alert(1)>"
LIKE = "button[aria-label=\"J'aime\"]"
ANSWERED = "#chat .ia-final"  # final answers and abstentions (not the streaming placeholder)



@pytest.fixture(scope="module")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("/usr/bin/chromium est absent : lancez `make test` (il l'installe) ou `apt-get install chromium`.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield browser
        browser.close()


def _serve(demo) -> Iterator[str]:
    from ui.app import launch

    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True)
    try:
        yield url
    finally:
        demo.close()


@pytest.fixture(scope="module")
def store(settings) -> FeedbackStore:
    return FeedbackStore.in_dir(Path(settings.data_dir) / "browser")


@pytest.fixture(scope="module")
def app_url(assistant, settings, store) -> Iterator[str]:
    from ui.app import build_app

    yield from _serve(build_app(assistant, settings, store=store))


class Page:
    """A fresh page on the app, recording dialogs, requests that leave it and console errors."""

    def __init__(self, browser, url: str) -> None:
        self.url = url
        self.context = browser.new_context(locale="fr-FR", viewport={"width": 1280, "height": 900})
        self.page = self.context.new_page()
        self.dialogs: list[str] = []
        self.foreign: list[str] = []
        self.page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        self.page.on("request", lambda r: None if r.url.startswith((url, "data:", "blob:")) else self.foreign.append(r.url))
        self.page.goto(url, wait_until="load")
        self.page.locator("#question textarea").wait_for()

    def ask(self, question: str, press_enter: bool = False) -> None:
        before = self.page.locator(ANSWERED).count()
        box = self.page.locator("#question textarea")
        box.fill(question)
        box.press("Enter") if press_enter else self.page.locator("#send").click()
        self.wait_answers(before + 1)

    def wait_answers(self, count: int, timeout: float = 60) -> None:
        self.page.locator(ANSWERED).nth(count - 1).wait_for(timeout=timeout * 1000)

    def close(self) -> None:
        self.context.close()


@pytest.fixture()
def page(browser, app_url) -> Iterator[Page]:
    page = Page(browser, app_url)
    yield page
    page.close()


def _rows(store: FeedbackStore, question: str, timeout: float = 15) -> list[sqlite3.Row]:
    deadline = time.monotonic() + timeout
    while True:
        with sqlite3.connect(store.path) as db:
            db.row_factory = sqlite3.Row
            rows = db.execute("SELECT * FROM feedback WHERE question = ? ORDER BY id", (question,)).fetchall()
        if rows or time.monotonic() > deadline:
            return rows
        time.sleep(0.2)


def test_question_answer_sources_and_thumbs_up(page: Page, store: FeedbackStore, artifacts: Path) -> None:
    p = page.page
    page.ask(BARKHANE)
    answer = p.locator("#chat .ia-answer.ia-final").last
    assert "15 août 2022" in answer.inner_text()
    assert answer.locator(".ia-marker").all_inner_texts() == ["[1]"]
    sources = p.locator("#chat .ia-sources").last
    assert sources.locator(".ia-source").count() == 1 and not sources.locator(".ia-quote").is_visible()
    sources.locator("summary").first.click()  # collapsed until asked for
    head = sources.locator(".ia-source-head").inner_text()
    assert "[1]" in head and "Programme Mali — Interpeace et IMRAP › Contexte" in head
    quote = sources.locator(".ia-quote mark")
    assert "L’opération Barkhane s’est définitivement retirée du Mali le 15 août 2022" in quote.inner_text()
    sources.locator(".ia-context summary").click()  # the surrounding paragraph
    passage = sources.locator(".ia-passage")
    assert "Malgré les efforts des partenaires" in passage.inner_text()
    assert "15 août 2022" in passage.locator("mark").inner_text()
    p.screenshot(path=str(artifacts / "browser-answer-sources.png"), full_page=True)

    p.locator(LIKE).last.click()
    (row,) = _rows(store, BARKHANE)
    assert row["rating"] == "up" and row["engine"] == "extractive" and row["abstained"] == 0
    assert "15 août 2022" in row["answer"] and json.loads(row["history"]) == []
    assert any("15 août 2022" in q for c in json.loads(row["citations"]) for q in c["quotes"])
    p.locator("#comment textarea").fill("Claire, avec la bonne source.")
    p.locator("#send-comment").click()
    deadline = time.monotonic() + 15
    while _rows(store, BARKHANE)[0]["comment"] != "Claire, avec la bonne source." and time.monotonic() < deadline:
        time.sleep(0.2)
    assert _rows(store, BARKHANE)[0]["comment"] == "Claire, avec la bonne source."
    p.screenshot(path=str(artifacts / "browser-feedback.png"), full_page=True)
    assert page.dialogs == [] and page.foreign == []  # nothing left the machine


def test_xss_question_is_shown_as_text(page: Page, artifacts: Path) -> None:
    p = page.page
    page.ask(XSS, press_enter=True)
    time.sleep(1)  # give an injected handler every chance to fire
    assert p.locator("#chat .ia-question").last.inner_text() == XSS
    assert p.locator("#chat img").count() == 0
    assert p.evaluate("document.querySelectorAll('img[src=\"x\"], [onerror]').length") == 0
    assert page.dialogs == []
    p.screenshot(path=str(artifacts / "browser-xss.png"), full_page=True)


def test_starter_follow_up_and_new_conversation(page: Page, store: FeedbackStore, assistant) -> None:
    p = page.page
    starter = next(q for q in assistant.discover().questions if "MINUSMA" in q)  # drawn from the corpus
    p.locator("#chat").get_by_text(starter).click()  # a starter question answers at once
    page.wait_answers(1)
    page.ask(FOLLOW_UP)
    assert "Conseil de sécurité" in p.locator("#chat .ia-answer").last.inner_text()
    p.locator(LIKE).last.click()
    (row,) = _rows(store, FOLLOW_UP)
    assert [t["content"] for t in json.loads(row["history"])][0] == starter  # the history went along
    assert "MINUSMA" in row["query"]

    p.locator("#new-conversation").click()
    # Empty again: the answers are gone (the starter text alone would also match the old message).
    p.locator(ANSWERED).first.wait_for(state="detached", timeout=15_000)
    assert p.locator(ANSWERED).count() == 0
    p.locator("#chat").get_by_text(starter).wait_for()  # and the starters are back
    page.ask(FOLLOW_UP)
    p.locator(LIKE).last.click()
    deadline = time.monotonic() + 15
    while len(_rows(store, FOLLOW_UP)) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)
    fresh = _rows(store, FOLLOW_UP)[-1]
    assert json.loads(fresh["history"]) == [] and "MINUSMA" not in fresh["query"]
    assert fresh["conversation"] != row["conversation"]


def test_abstention_looks_different(page: Page) -> None:
    p = page.page
    page.ask("Quel est le budget du programme ?")
    abstention = p.locator("#chat .ia-abstention").last
    assert "Je n'ai pas trouvé cette information dans les documents." in abstention.inner_text()
    assert "gestionnaire du programme" in abstention.locator(".ia-hint").inner_text()
    assert p.locator("#chat .ia-sources").count() == 0 and p.locator("#chat .ia-marker").count() == 0


def test_documents_tab(page: Page, assistant, artifacts: Path) -> None:
    p = page.page
    p.get_by_role("tab", name="Documents").click()
    status = p.locator("#index-status")
    status.wait_for()
    text = status.inner_text()
    manifest = assistant.index.manifest
    assert manifest["embedding_model"] in text and str(manifest["chunks"]) in text
    assert manifest["built_at"][:10] in text
    view = p.locator("#section-view")
    assert "Contexte" in view.inner_text() and "coup d’État militaire de 2012" in view.inner_text()
    p.locator("#section").get_by_text("Initiatives", exact=True).click()
    p.locator("#section-view").get_by_text("Voix des femmes").wait_for()
    p.screenshot(path=str(artifacts / "browser-documents.png"), full_page=True)


@pytest.fixture()
def library_url(tmp_path) -> Iterator[tuple[str, Path]]:
    """An app over its own copy of the corpus (this test adds a file to it)."""
    import shutil

    from assistant import Assistant
    from assistant.config import load_settings
    from ui.app import build_app, launch

    from .conftest import CORPUS_DIR

    corpus = tmp_path / "corpus"
    shutil.copytree(CORPUS_DIR, corpus)
    settings = load_settings(env={}, corpus_dir=corpus, index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    demo = build_app(Assistant.load(settings=settings), settings, evaluation=False)
    _, url, _ = launch(demo, port=free_port(), prevent_thread_lock=True, quiet=True, corpus_dir=corpus,
                       max_file_size=settings.max_document_bytes)
    try:
        yield url, corpus
    finally:
        demo.close()


def test_upload_a_pdf_then_ask_about_it(browser, library_url, tmp_path: Path, artifacts: Path) -> None:
    from .test_documents import PAGES, _pdf

    url, corpus = library_url
    _pdf(tmp_path / "Rapport d'activité 2024.pdf", PAGES)
    page = Page(browser, url)
    try:
        p = page.page
        p.get_by_role("tab", name="Documents").click()
        table = p.locator("#library")
        table.get_by_text("interpeace-mali-programme.txt").wait_for()
        assert "indexé" in table.inner_text()
        p.locator("#upload input[type=file]").set_input_files(str(tmp_path / "Rapport d'activité 2024.pdf"))
        p.locator("#library-message").get_by_text("Index à jour").wait_for(timeout=120_000)
        message = p.locator("#library-message").inner_text()
        assert "Ajouté(s) : Rapport d'activité 2024.pdf" in message and "1 ajouté(s)" in message
        row = table.locator("tr", has_text="Rapport d'activité 2024.pdf")
        assert "indexé" in row.inner_text() and "\t3\t" in row.inner_text(), row.inner_text()
        assert (corpus / "Rapport d'activité 2024.pdf").read_bytes() == (tmp_path / "Rapport d'activité 2024.pdf").read_bytes()
        p.screenshot(path=str(artifacts / "browser-library.png"), full_page=True)
        p.get_by_role("tab", name="Conversation").click()
        page.ask("Où le comité de pilotage s'est-il réuni ?")
        answer = p.locator(ANSWERED).last
        assert "Ségou" in answer.inner_text()
        sources = p.locator("#chat .ia-sources").last
        sources.locator("summary").first.click()
        head = sources.locator(".ia-source-head").first
        assert "Rapport d'activité 2024" in head.inner_text() and "p. 2" in head.inner_text()
        link = head.locator("a.ia-open")
        assert link.get_attribute("href").endswith("#page=2")
        opened = p.request.get(url.rstrip("/") + "/" + link.get_attribute("href").split("#")[0])
        assert opened.ok and opened.body()[:5] == b"%PDF-"
    finally:
        page.close()


# -- a hostile corpus and a slow, streaming engine (a stand-in Assistant) --------------------------
EVIL = ('<script>window.__pwned = 1</script><img src=x onerror="window.__pwned = 2; alert(2)"> '
        '</details></li></ol><iframe src="javascript:alert(3)"></iframe> **gras** [lien](javascript:alert(4)) '
        '![image](x) <b>brut</b>')


class HostileAssistant:
    """Quacks like Assistant: its passage, title and section are hostile; it streams slowly."""

    def __init__(self, settings) -> None:
        self.settings = settings
        text = f"Le programme a commencé en 2013. {EVIL} Fin du passage."
        chunk = SimpleNamespace(document="evil", title=f"Doc {EVIL}", section=f"Section {EVIL}", start=0, text=text,
                                source="evil.txt")
        self.index = SimpleNamespace(chunks=[chunk], manifest={"embedding_model": EVIL, "chunks": 1, "documents": 1,
                                                               "sentences": 2, "built_at": "2026-01-01T00:00:00+00:00",
                                                               "build_seconds": 0.1})
        self.text, self.chunk = text, chunk

    def stream(self, question: str, history=None):
        slow = "lent" in question
        pieces = ["Le programme a commencé ", "en 2013. ", f"{EVIL} ", "[1]"]
        for piece in pieces * (20 if slow else 1):
            time.sleep(1.0 if slow else 0.3)
            yield piece
        start = self.text.index(EVIL)
        passage = Passage(chunk_id="evil-0", text=self.text, document="evil", title=self.chunk.title,
                          source="evil.txt", section=self.chunk.section, start=0, end=len(self.text), score=0.9,
                          dense_score=0.9, bm25_score=0.0)
        citation = Citation(number=1, passage=passage, score=0.9, highlights=((start, start + len(EVIL)),))
        yield Answer(text="".join(pieces), citations=(citation,), abstained=False, query=question, question=question,
                     language="fr", engine="stub")

    def ask(self, question: str, history=None):
        return [p for p in self.stream(question, history) if isinstance(p, Answer)][-1]

    def discover(self):
        from assistant.discovery import Explorer

        return Explorer().explore([])


@pytest.fixture(scope="module")
def hostile_url(settings, tmp_path_factory) -> Iterator[str]:
    from ui.app import build_app

    store = FeedbackStore.in_dir(tmp_path_factory.mktemp("hostile"))
    yield from _serve(build_app(HostileAssistant(settings), settings, store=store))


def test_hostile_passages_stream_as_text(browser, hostile_url: str, artifacts: Path) -> None:
    page = Page(browser, hostile_url)
    p = page.page
    try:
        assert EVIL in p.locator("#header").inner_text()  # the document list in the header, as text
        box = p.locator("#question textarea")
        box.fill("Quand le programme a-t-il commencé ?")
        p.locator("#send").click()
        p.locator("#chat .ia-streaming").wait_for()  # pieces appear before the final answer
        page.wait_answers(1)
        answer = p.locator("#chat .ia-answer.ia-final")
        assert EVIL in answer.inner_text() and answer.locator(".ia-marker").count() == 1
        sources = p.locator("#chat .ia-sources")
        sources.locator("summary").first.click()
        sources.locator(".ia-context summary").click()
        assert sources.count() == 1 and sources.locator(".ia-source").count() == 1  # layout intact
        assert EVIL in sources.locator(".ia-quote").inner_text()
        assert EVIL in sources.locator(".ia-source-head").inner_text()
        assert EVIL in sources.locator(".ia-passage mark").inner_text()
        p.get_by_role("tab", name="Documents").click()
        p.locator("#section-view").wait_for()
        assert EVIL in p.locator("#section-view").inner_text() and EVIL in p.locator("#index-status").inner_text()
        time.sleep(1)
        for scope in ("#chat", "#section-view", "#index-status", "#header"):
            assert p.locator(f"{scope} img, {scope} iframe, {scope} script, {scope} b").count() == 0, scope
        assert p.evaluate("window.__pwned") is None and page.dialogs == []
        p.screenshot(path=str(artifacts / "browser-hostile-documents.png"), full_page=True)
    finally:
        page.close()


def test_stop_interrupts_a_streaming_answer(browser, hostile_url: str) -> None:
    page = Page(browser, hostile_url)
    p = page.page
    try:
        p.locator("#question textarea").fill("Réponds lentement")
        p.locator("#send").click()
        p.locator("#stop").wait_for()
        assert not p.locator("#send").is_visible()
        p.locator("#chat .ia-streaming").get_by_text("Le programme a commencé").wait_for()
        p.locator("#stop").click()
        p.locator("#send").wait_for()
        assert not p.locator("#stop").is_visible() and p.locator("#question textarea").is_enabled()
        shown = p.locator("#chat .ia-streaming").inner_text()
        time.sleep(3)
        assert p.locator("#chat .ia-streaming").inner_text() == shown  # nothing arrives after Stop
        assert p.locator(ANSWERED).count() == 0
        # The conversation goes on after a stop.
        p.locator("#question textarea").fill("Quand le programme a-t-il commencé ?")
        p.locator("#send").click()
        page.wait_answers(1)
    finally:
        page.close()


# -- issue 13: French, accessible, on the phone; export, copy, saved conversations, Découvrir --------
DESKTOP, PHONE = {"width": 1366, "height": 900}, {"width": 390, "height": 844}
TABS = {"Conversation": "conversation", "Découvrir": "decouvrir", "Documents": "documents", "Évaluation": "evaluation"}


def _open(browser, url: str, viewport: dict, theme: str = "light", locale: str = "en-US"):
    """A page as a browser set to English would get it (the page must be French anyway)."""
    context = browser.new_context(locale=locale, viewport=viewport, color_scheme=theme, accept_downloads=True,
                                  is_mobile=viewport is PHONE, has_touch=viewport is PHONE)
    context.grant_permissions(["clipboard-read", "clipboard-write"])
    page = context.new_page()
    page.goto(url + ("?__theme=dark" if theme == "dark" else ""), wait_until="load")
    page.locator("#question textarea").wait_for()
    return context, page


def _tab(page, name: str) -> None:
    """Open a tab; on a phone, those that do not fit are in the « Autres onglets » menu."""
    tab = page.get_by_role("tab", name=name)
    if not tab.is_visible():
        page.locator('button[aria-label="Autres onglets"]').click()
        tab = page.get_by_role("tab", name=name)
        if not tab.is_visible():
            tab = page.get_by_text(name, exact=True).last
    tab.click()


def _ask(page, question: str) -> None:
    before = page.locator(ANSWERED).count()
    page.locator("#question textarea").fill(question)
    page.locator("#send").click()
    page.locator(ANSWERED).nth(before).wait_for(timeout=60_000)


@pytest.mark.parametrize("theme", ["light", "dark"])
@pytest.mark.parametrize("size", ["desktop", "phone"])
def test_french_accessible_page_in_both_themes_and_sizes(browser, app_url: str, artifacts: Path, theme: str,
                                                         size: str) -> None:
    from axe_playwright_python.sync_playwright import Axe

    viewport = DESKTOP if size == "desktop" else PHONE
    context, p = _open(browser, app_url, viewport, theme)
    try:
        assert p.evaluate("document.documentElement.lang") == "fr"
        _ask(p, BARKHANE)
        p.locator("#chat .ia-sources > summary").last.click()
        time.sleep(0.5)
        labels = p.evaluate("Array.from(document.querySelectorAll('[aria-label]'), e => e.getAttribute('aria-label'))")
        assert "Copier le message" in labels and "Copy message" not in labels
        assert not any("<div" in label for label in labels)  # messages are named by their text
        violations = [v for v in Axe().run(p).response["violations"] if v["impact"] in ("serious", "critical")]
        assert violations == [], [(v["id"], [n["target"] for n in v["nodes"][:3]]) for v in violations]
        if size == "phone":
            p.evaluate("window.scrollTo(0, 0)")
            title = p.locator(".ia-header h1").bounding_box()
            assert title and title["y"] >= 0 and title["y"] + title["height"] <= viewport["height"]
            box = p.locator("#question textarea").bounding_box()
            assert box and box["width"] >= 0.6 * viewport["width"], box
        for name, slug in TABS.items():  # every tab passes too; screenshots of each at both sizes
            _tab(p, name)
            time.sleep(1)
            if name == "Découvrir":
                p.locator("#discover").get_by_text("Sigles").wait_for()
            violations = [v for v in Axe().run(p).response["violations"] if v["impact"] in ("serious", "critical")]
            assert violations == [], (name, [(v["id"], [n["target"] for n in v["nodes"][:3]]) for v in violations])
            if theme == "light":
                p.screenshot(path=str(artifacts / f"tab-{slug}-{size}.png"), full_page=True)
    finally:
        context.close()


def test_phone_page_opens_on_its_title(browser, app_url: str) -> None:
    context, p = _open(browser, app_url, PHONE)
    try:
        time.sleep(1)
        assert p.evaluate("window.scrollY") == 0  # no autofocus scrolling past the title
        assert p.locator(".ia-header h1").is_visible()
    finally:
        context.close()


def test_export_copy_and_marker_links(browser, app_url: str) -> None:
    context, p = _open(browser, app_url, DESKTOP, locale="fr-FR")
    try:
        _ask(p, BARKHANE)
        p.locator("#chat a.ia-marker").last.click()  # [1] opens its source
        source = p.locator("#chat .ia-source").last
        source.wait_for(state="visible")
        assert p.evaluate("document.activeElement && document.activeElement.classList.contains('ia-source')")
        with p.expect_download() as download:
            p.locator("#export").click()
        assert download.value.suggested_filename.endswith(".md")
        markdown = Path(download.value.path()).read_text(encoding="utf-8")
        assert f"## {BARKHANE}" in markdown and "[1] Programme Mali — Interpeace et IMRAP › Contexte" in markdown
        assert "> L’opération Barkhane s’est définitivement retirée du Mali le 15 août 2022" in markdown
        assert "<" not in markdown
        p.locator('button[aria-label="Copier le message"]').last.click()
        time.sleep(0.5)
        copied = p.evaluate("navigator.clipboard.readText()")
        assert copied.startswith("L’opération Barkhane") and "<" not in copied and "&#" not in copied
        assert "[1] Programme Mali — Interpeace et IMRAP › Contexte : « L’opération Barkhane" in copied
    finally:
        context.close()


def test_conversations_kept_across_reload_and_restart(browser, assistant, tmp_path: Path) -> None:
    from assistant.config import load_settings
    from ui.app import build_app, launch

    from .conftest import CORPUS_DIR

    settings = load_settings(env={}, corpus_dir=CORPUS_DIR, index_dir=assistant.settings.index_dir,
                             data_dir=tmp_path / "data")
    port = free_port()

    def serve():
        demo = build_app(assistant, settings, evaluation=False)
        _, url, _ = launch(demo, port=port, prevent_thread_lock=True, quiet=True)
        return demo, url

    def options(p):
        if not p.locator("#saved input").is_visible():
            p.locator("#saved-conversations").get_by_text("Mes conversations").click()
        p.locator("#header").click()  # away from the list, so that the next click opens it
        p.locator("#saved input").click()
        time.sleep(0.5)
        return p.get_by_role("option")

    def listed(p) -> list[str]:
        items = [item.replace("✓", "").strip() for item in options(p).all_inner_texts()]  # ✓: the one selected
        p.keyboard.press("Escape")
        return items

    def open_first(p) -> None:
        options(p).first.wait_for()
        time.sleep(0.3)
        p.keyboard.press("ArrowDown")
        p.keyboard.press("Enter")

    demo, url = serve()
    context, p = _open(browser, url, DESKTOP, locale="fr-FR")
    try:
        _ask(p, BARKHANE)
        time.sleep(1)
        p.reload(wait_until="load")
        p.locator("#question textarea").wait_for()
        time.sleep(1)
        assert any(item.startswith(BARKHANE) for item in listed(p))
        demo.close()
        demo, url = serve()  # a server restart: same data folder, same browser
        p.goto(url, wait_until="load")
        p.locator("#question textarea").wait_for()
        time.sleep(1)
        items = listed(p)
        assert any(item.startswith(BARKHANE) for item in items), items
        open_first(p)  # reopened
        p.locator(ANSWERED).first.wait_for()
        assert "15 août 2022" in p.locator(ANSWERED).first.inner_text()
        p.locator("#new-title textarea, #new-title input").first.fill("Barkhane")
        p.locator("#rename").click()
        time.sleep(1)
        items = listed(p)
        assert any(item.startswith("Barkhane ·") for item in items), items
        other, q = _open(browser, url, DESKTOP, locale="fr-FR")  # another browser sees none of it
        try:
            assert listed(q) == [] or not any("Barkhane" in i for i in listed(q))
        finally:
            other.close()
        open_first(p)
        p.locator("#delete").click()
        time.sleep(1)
        assert not any("Barkhane" in item for item in listed(p))
    finally:
        context.close()
        demo.close()


def test_discover_tab_and_every_suggested_question_is_answered(browser, app_url: str, assistant,
                                                               artifacts: Path) -> None:
    context, p = _open(browser, app_url, DESKTOP, locale="fr-FR")
    try:
        p.get_by_role("tab", name="Découvrir").click()
        view = p.locator("#discover")
        view.get_by_text("CNT : Conseil national de transition").wait_for()
        text = view.inner_text()
        assert "CNT" in text and "MINUSMA" in text
        dates = view.locator("ol > li > time").all_inner_texts()
        years = [int(re.search(r"\d{4}", d).group()) for d in dates]
        assert len(years) >= 5 and years == sorted(years)  # in date order
        events = view.locator("ol > li").all_inner_texts()
        assert any(d == "2015" and "accord d’Alger" in e for d, e in zip(dates, events))
        p.get_by_role("tab", name="Conversation").click()
        questions = list(assistant.discover().questions)
        assert len(questions) >= 3
        for question in questions:  # each starter, in a fresh conversation
            p.locator("#new-conversation").click()
            p.locator("#chat").get_by_text(question).click()
            p.locator(ANSWERED).first.wait_for(timeout=60_000)
            answer = p.locator(ANSWERED).first
            assert answer.locator("a.ia-marker").count() >= 1, (question, answer.inner_text())
            assert p.locator("#chat .ia-abstention").count() == 0
    finally:
        context.close()
