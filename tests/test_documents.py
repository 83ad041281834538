"""Documents in other formats, made by the test with real libraries: a PDF of several pages (page
numbers kept, running header and footer and line-end hyphenation repaired), a corrupt PDF and a
PDF with no text layer (left out with their reason), through the real index and answer engine."""

from __future__ import annotations

import pytest

from assistant import Assistant
from assistant.config import load_settings
from assistant.corpus import read_corpus

pytestmark = pytest.mark.slow

PAGES = [
    "Le programme de dialogue a commencé dans les régions du centre du pays. Des groupes de "
    "discussion réunissent des jeunes, des femmes et des chefs traditionnels.",
    "Le comité de pilotage s'est réuni à Ségou le 12 mars 2024 pour valider le plan de travail. "
    "Il a retenu trois priorités pour l'année, dont la formation des médiateurs communau-\n"
    "taires.",
    "Les résultats seront présentés lors d'une restitution publique à Bamako. Un rapport final "
    "sera diffusé aux partenaires.",
]


def _pdf(path, pages, text_layer=True):
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_font("Helvetica", size=11)
    pdf.set_auto_page_break(False)
    for number, body in enumerate(pages, start=1):
        pdf.add_page()
        if text_layer:
            pdf.cell(0, 8, "Rapport d'activité IMRAP 2024", new_x="LMARGIN", new_y="NEXT")
            for paragraph in body.split("\n"):
                pdf.multi_cell(0, 6, paragraph, new_x="LMARGIN", new_y="NEXT")
            pdf.set_y(-20)
            pdf.cell(0, 8, f"Page {number} sur {len(pages)}")
        else:
            pdf.rect(20, 20, 100, 60, style="F")  # a drawing, no text: what a scan looks like to pypdf
    pdf.output(str(path))


@pytest.fixture(scope="module")
def library(tmp_path_factory):
    corpus = tmp_path_factory.mktemp("library")
    _pdf(corpus / "rapport.pdf", PAGES)
    _pdf(corpus / "scan.pdf", ["x"], text_layer=False)
    (corpus / "casse.pdf").write_bytes(b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ngarbage")
    (corpus / "note.md").write_text("# Contexte\n\nUne note de terrain sur Mopti.", encoding="utf-8")
    return corpus


def test_pdf_text_pages_and_repairs(library):
    documents, failures = read_corpus(library)
    report = next(d for d in documents if d.source == "rapport.pdf")
    assert len(report.pages) == 3 and report.page_at(report.text.index("Ségou")) == 2
    assert report.page_at(0) == 1 and report.page_at(report.text.index("Bamako")) == 3
    assert "Rapport d'activité IMRAP" not in report.text and "Page 2 sur 3" not in report.text
    assert "communautaires" in report.text, "a word hyphenated at a line end is whole again"
    reasons = {f.source: f.reason for f in failures}
    assert "couche texte" in reasons["scan.pdf"] and "PDF illisible" in reasons["casse.pdf"]


def test_answer_from_page_two_cites_page_two(library, tmp_path):
    settings = load_settings(env={}, corpus_dir=library, index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    assistant = Assistant.load(settings=settings)
    answer = assistant.ask("Où le comité de pilotage s'est-il réuni ?")
    assert not answer.abstained and "Ségou" in answer.text
    citation = answer.citations[0]
    assert citation.source == "rapport.pdf" and citation.page == 2 and citation.to_dict()["page"] == 2
    assert all(p.page for p in answer.retrieved if p.source == "rapport.pdf")
    other = assistant.ask("Que dit la note de terrain sur Mopti ?")
    assert other.citations and other.citations[0].page is None
