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


def _docx(path):
    import docx

    document = docx.Document()
    document.add_heading("Note de mission", level=1)
    document.add_paragraph("Cette note résume la mission conduite dans la région de Mopti.")
    document.add_heading("Partenaires rencontrés", level=2)
    document.add_paragraph("La mission a rencontré l'association Jeunesse et Paix de Sévaré le 4 avril 2024.")
    for item in ("les chefs de village", "les associations de femmes", "les autorités communales"):
        document.add_paragraph(item, style="List Bullet")
    document.add_heading("Suites", level=2)
    document.add_paragraph("Un atelier de restitution aura lieu en juin.")
    document.save(str(path))


def test_word_document_answers_cite_their_heading(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    _docx(corpus / "mission.docx")
    (corpus / "abime.docx").write_bytes(b"PK\x03\x04 pas un vrai docx")
    documents, failures = read_corpus(corpus)
    [mission] = documents
    assert "## Partenaires rencontrés" in mission.text and "- les chefs de village\n- les associations" in mission.text
    assert [f.source for f in failures] == ["abime.docx"] and "Word illisible" in failures[0].reason
    settings = load_settings(env={}, corpus_dir=corpus, index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    answer = Assistant.load(settings=settings).ask("Quelle association la mission a-t-elle rencontrée à Sévaré ?")
    assert not answer.abstained and "Jeunesse et Paix" in answer.text
    assert answer.citations[0].section == "Partenaires rencontrés" and answer.citations[0].page is None


PAGE = """<!DOCTYPE html><html lang="fr"><head><meta charset="utf-8"><title>Rapport annuel 2023 – IMRAP</title>
<link rel="canonical" href="https://imrap.example.org/rapport-2023"><script>var tracker = "analytics";</script></head>
<body><nav><ul><li><a href="/">Accueil</a></li><li><a href="/projets">Nos projets</a></li><li><a href="/contact">Contactez-nous</a></li></ul></nav>
<div class="cookie-banner" id="cookie-consent"><p>Nous utilisons des cookies pour améliorer votre expérience. Accepter tous les cookies.</p></div>
<main><article><h1>Rapport annuel 2023</h1>
<p>L'Institut malien de recherche action pour la paix a conduit en 2023 une série de dialogues dans la région de Mopti avec les communautés pastorales et agricoles.</p>
<h2>Résultats</h2>
<p>Quarante-deux espaces de dialogue ont été animés dans douze communes, réunissant près de trois mille participants.</p>
<p>La restitution finale a eu lieu à Sévaré le 9 décembre 2023 en présence des autorités régionales.</p>
</article></main>
<aside class="sidebar"><h3>Articles populaires</h3><ul><li><a href="/a">Lettre d'information de l'été</a></li></ul></aside>
<footer><p>© 2024 IMRAP – Tous droits réservés. Mentions légales. Suivez-nous sur Facebook.</p></footer></body></html>"""


def _odt(path):
    from odfdo import Document, Header, List, Paragraph

    document = Document("text")
    document.body.append(Header(1, "Compte rendu d'atelier"))
    document.body.append(Paragraph("L'atelier de validation s'est tenu à Kayes avec les partenaires du programme."))
    document.body.append(Header(2, "Décisions"))
    document.body.append(Paragraph("Les participants ont décidé de créer un comité de suivi présidé par le maire de Kayes."))
    document.body.append(List(["publier le rapport", "organiser une restitution"]))
    document.save(str(path))


def test_web_page_and_opendocument(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / "web").mkdir(parents=True)
    (corpus / "web" / "rapport-2023.html").write_text(PAGE, encoding="utf-8")
    _odt(corpus / "atelier.odt")
    (corpus / "abime.odt").write_bytes(b"PK\x03\x04 pas un vrai odt")
    documents, failures = read_corpus(corpus)
    by_source = {d.source: d for d in documents}
    page = by_source["web/rapport-2023.html"]
    assert page.title.startswith("Rapport annuel 2023") and page.url == "https://imrap.example.org/rapport-2023"
    assert "## Résultats" in page.text and "Sévaré le 9 décembre 2023" in page.text
    for boilerplate in ("Accueil", "cookies", "Tous droits réservés", "Articles populaires", "tracker"):
        assert boilerplate not in page.text, boilerplate
    workshop = by_source["atelier.odt"]
    assert "## Décisions" in workshop.text and "- publier le rapport\n- organiser une restitution" in workshop.text
    assert [f.source for f in failures] == ["abime.odt"] and "OpenDocument illisible" in failures[0].reason

    settings = load_settings(env={}, corpus_dir=corpus, index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    assistant = Assistant.load(settings=settings)
    assert not any("cookies" in c.text or "droits réservés" in c.text for c in assistant.index.chunks)
    answer = assistant.ask("Où la restitution finale a-t-elle eu lieu ?")
    assert not answer.abstained and "Sévaré" in answer.text
    citation = answer.citations[0].to_dict()
    assert citation["source"] == "web/rapport-2023.html" and citation["section"] == "Résultats"
    assert citation["url"] == "https://imrap.example.org/rapport-2023" and citation["page"] is None
    answer = assistant.ask("Qui préside le comité de suivi ?")
    assert not answer.abstained and "maire de Kayes" in answer.text
    assert answer.citations[0].source == "atelier.odt" and answer.citations[0].section == "Décisions"
    assert answer.citations[0].url is None
