"""The document library (assistant/library.py) and ``Assistant.update``: listing, adding an upload,
removing a file, re-indexing only what changed while questions are still answered."""

from __future__ import annotations

import shutil
import threading

import pytest

from assistant import Assistant
from assistant.config import load_settings
from assistant.library import Library, matches_type, safe_name

from .conftest import CORPUS_DIR
from .test_documents import PAGES, _docx, _pdf

pytestmark = pytest.mark.slow
BARKHANE = "Quand l'opération Barkhane s'est-elle retirée du Mali ?"


@pytest.fixture()
def corpus(tmp_path):
    target = tmp_path / "corpus"
    shutil.copytree(CORPUS_DIR, target)
    return target


def test_safe_names_never_leave_the_folder() -> None:
    assert safe_name("../../etc/rapport.PDF") == "rapport.pdf"
    assert safe_name("C:\\Users\\awa\\Note de terrain.docx") == "Note de terrain.docx"
    assert safe_name("bilan\x00\n<script>.md") == "bilan_script_.md"
    assert safe_name("Évaluation été 2024.txt") == "Évaluation été 2024.txt"
    assert len(safe_name("a" * 400 + ".txt")) <= 120
    for refused in ("programme.exe", ".txt", "...", "x.pdf/", "", "rapport"):
        with pytest.raises(ValueError, match="non pris en charge"):
            safe_name(refused)


def test_type_is_checked_by_content(tmp_path) -> None:
    _pdf(tmp_path / "r.pdf", PAGES[:1])
    _docx(tmp_path / "m.docx")
    pdf, docx = (tmp_path / "r.pdf").read_bytes(), (tmp_path / "m.docx").read_bytes()
    assert matches_type(".pdf", pdf) and matches_type(".docx", docx)
    assert not matches_type(".pdf", docx) and not matches_type(".docx", pdf) and not matches_type(".odt", docx)
    assert not matches_type(".txt", pdf) and not matches_type(".md", docx)
    assert matches_type(".html", b"<!DOCTYPE html><html><body><p>x</p></body></html>")
    assert not matches_type(".html", "Juste du texte sans balise.".encode())
    assert matches_type(".txt", "Une note en français.".encode())


def test_add_and_remove_keep_everything_inside_and_nothing_is_lost(corpus) -> None:
    library = Library(corpus, max_bytes=10_000)
    source = library.add("../dehors/Note.md", "# Note\n\nUne note de terrain.".encode())
    assert source == "Note.md" and (corpus / "Note.md").read_text(encoding="utf-8").startswith("# Note")
    assert not (corpus.parent / "dehors").exists()
    with pytest.raises(ValueError, match="existe déjà"):
        library.add("Note.md", b"autre contenu")
    assert (corpus / "Note.md").read_text(encoding="utf-8").startswith("# Note"), "never overwritten"
    with pytest.raises(ValueError, match="trop volumineux"):
        library.add("gros.txt", b"x" * 10_001)
    with pytest.raises(ValueError, match="n'est pas celui d'un fichier .pdf"):
        library.add("faux.pdf", b"pas un pdf du tout")
    with pytest.raises(ValueError, match="vide"):
        library.add("vide.txt", b"  \n")
    assert sorted(p.name for p in corpus.iterdir()) == ["Note.md", "interpeace-mali-programme.txt", "manifest.toml"]
    kept = library.remove("Note.md")
    assert not (corpus / "Note.md").exists() and kept.read_text(encoding="utf-8").startswith("# Note")
    assert kept.parent == corpus / ".corbeille"
    for refused in ("Note.md", "../corpus/manifest.toml", ".corbeille/" + kept.name, "manifest.toml", ""):
        with pytest.raises(ValueError, match="pas un document du corpus"):
            library.remove(refused)


def test_update_indexes_an_upload_while_questions_are_answered(corpus, tmp_path) -> None:
    settings = load_settings(env={}, corpus_dir=corpus, index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    assistant = Assistant.load(settings=settings)
    library = Library(corpus, settings.max_document_bytes)
    before = assistant.ask(BARKHANE)
    _pdf(tmp_path / "rapport.pdf", PAGES)
    library.add("Rapport d'activité.pdf", (tmp_path / "rapport.pdf").read_bytes())
    (corpus / "casse.docx").write_bytes(b"PK\x03\x04 abime")
    listed = {d.source: d for d in library.catalogue(assistant.index)}
    assert listed["Rapport d'activité.pdf"].status == "new" and listed["Rapport d'activité.pdf"].pages == 3
    assert listed["interpeace-mali-programme.txt"].status == "indexed" and listed["interpeace-mali-programme.txt"].chunks > 1
    assert listed["casse.docx"].status == "failed" and "Word illisible" in listed["casse.docx"].reason

    answers, errors = [], []
    worker = threading.Thread(target=lambda: answers.append(assistant.update()))
    worker.start()
    while worker.is_alive():  # questions keep being answered from the published index
        try:
            assert assistant.ask(BARKHANE).text == before.text
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)
    worker.join()
    assert not errors
    [summary] = answers
    assert summary["added"] == ["Rapport d'activité.pdf"] and summary["failed"][0]["source"] == "casse.docx"
    pdf_chunks = [c for c in assistant.index.chunks if c.source == "Rapport d'activité.pdf"]
    assert summary["chunks_embedded"] == len(pdf_chunks) >= 2, "only the new file went through the model"
    answer = assistant.ask("Où le comité de pilotage s'est-il réuni ?")
    assert "Ségou" in answer.text and answer.citations[0].page == 2
    assert {d.source: d.status for d in library.catalogue(assistant.index)}["Rapport d'activité.pdf"] == "indexed"
    # One update at a time: a second one, while the first is under way, is refused.
    (corpus / "note.txt").write_text("Une note ajoutée pendant la mise à jour.", encoding="utf-8")
    started, finish = threading.Event(), threading.Event()

    def notify(message: str) -> None:
        started.set()
        finish.wait(60)

    first = threading.Thread(target=lambda: assistant.update(notify=notify))
    first.start()
    try:
        assert started.wait(60), "the first update reported nothing"
        with pytest.raises(RuntimeError, match="déjà en cours"):
            assistant.update()
    finally:
        finish.set()
        first.join()
