"""Files that try to hurt the reader, fast (no model): decompression bombs in Word and OpenDocument
files, a parser over its time or memory budget, names that are not UTF-8, UTF-16 and UTF-32 text,
a 10 MB page on one line, Markdown escapes in web pages, links to hidden files and files reached
twice. Each is left out with a French reason, or read, and never stops the other files."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

from assistant import corpus as corpus_module
from assistant.config import load_settings
from assistant.corpus import read_corpus, source_name
from assistant.index import update_index
from assistant.library import Library, corpus_file, matches_type

from .fakes import HashingEmbedder

GIGABYTE = 1 << 30
NOTE = "# Note\n\nLe comité de paix de Mopti s'est réuni le 12 mars 2024 avec les maires de la région.\n"


def bomb(path: Path, kind: str = "docx", unpacked: int = GIGABYTE) -> Path:
    """A Word (``docx``) or OpenDocument (``odt``) file whose main XML part, highly compressible,
    unpacks to ``unpacked`` bytes: a few MB on disk."""
    member = "word/document.xml" if kind == "docx" else "content.xml"
    line = (b"<w:p><w:r><w:t>bombe</w:t></w:r></w:p>" if kind == "docx"
            else b"<text:p>bombe</text:p>") * 4096
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        if kind == "odt":
            archive.writestr(zipfile.ZipInfo("mimetype"), "application/vnd.oasis.opendocument.text")
        else:
            archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types/>')
        with archive.open(member, "w", force_zip64=True) as out:
            written = 0
            while written < unpacked:
                piece = line[:unpacked - written]
                out.write(piece)
                written += len(piece)
    return path


def docx_with_paragraphs(path: Path, paragraphs: list[str]) -> Path:
    """A real Word file (python-docx) whose body holds ``paragraphs``, written straight into its
    XML (fast for hundreds of thousands of paragraphs)."""
    import docx
    from xml.sax.saxutils import escape

    buffer = io.BytesIO()
    docx.Document().save(buffer)
    with zipfile.ZipFile(buffer) as source, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as target:
        for info in source.infolist():
            data = source.read(info.filename)
            if info.filename == "word/document.xml":
                head, _, rest = data.decode("utf-8").partition("<w:body>")
                body = "".join(f"<w:p><w:r><w:t>{escape(p)}</w:t></w:r></w:p>" for p in paragraphs)
                data = (head + "<w:body>" + body + "<w:sectPr/></w:body></w:document>").encode("utf-8")
            target.writestr(info, data)
    return path


# -- 1. bombs and budgets ------------------------------------------------------------------------
_MEASURED_READ = textwrap.dedent("""
    import json, resource, sys
    resource.setrlimit(resource.RLIMIT_AS, (4 << 30, resource.RLIM_INFINITY))  # never the machine's memory
    from assistant.corpus import read_corpus
    documents, failures = read_corpus(sys.argv[1])
    print(json.dumps({"documents": [d.source for d in documents], "failures": [f.to_dict() for f in failures]}))
""")


@pytest.fixture(scope="module")
def bombs(tmp_path_factory):
    """A corpus holding a note, a 1 GB Word bomb and a 1 GB OpenDocument bomb."""
    corpus = tmp_path_factory.mktemp("bombs") / "corpus"
    corpus.mkdir()
    (corpus / "note.md").write_text(NOTE, encoding="utf-8")
    bomb(corpus / "bombe.docx")
    bomb(corpus / "bombe.odt", kind="odt")
    return corpus


@pytest.mark.slow  # real parsers in a child process, large files
def test_zip_bombs_are_refused_from_their_directory_and_the_other_files_are_read(bombs):
    assert all((bombs / name).stat().st_size < 10_000_000 for name in ("bombe.docx", "bombe.odt"))
    done = subprocess.run([sys.executable, "-c", _MEASURED_READ, str(bombs)], capture_output=True, text=True,
                          timeout=300)
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["documents"] == ["note.md"]
    reasons = {f["source"]: f["reason"] for f in report["failures"]}
    assert sorted(reasons) == ["bombe.docx", "bombe.odt"]
    assert reasons["bombe.docx"].startswith("document Word refusé") and "décompressé" in reasons["bombe.docx"]
    assert reasons["bombe.odt"].startswith("document OpenDocument refusé") and "décompressé" in reasons["bombe.odt"]
    # Time and memory are measured, not asserted here (docs/documents.md gives the numbers): a
    # process's peak RSS on Linux includes the parent's at fork, so inside the suite it says nothing.


def test_an_archive_of_too_many_entries_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(corpus_module, "MAX_ARCHIVE_ENTRIES", 50)
    (tmp_path / "note.md").write_text(NOTE, encoding="utf-8")
    docx_with_paragraphs(tmp_path / "petit.docx", ["Un paragraphe du rapport de mission."])
    with zipfile.ZipFile(tmp_path / "petit.docx") as source, \
            zipfile.ZipFile(tmp_path / "entrees.docx", "w") as target:
        for info in source.infolist():
            target.writestr(info, source.read(info.filename))
        for n in range(60):
            target.writestr(f"word/media/vide{n}.xml", "")
    documents, failures = read_corpus(tmp_path)
    assert sorted(d.source for d in documents) == ["note.md", "petit.docx"]
    assert [f.source for f in failures] == ["entrees.docx"] and "fichiers (limite 50)" in failures[0].reason


@pytest.mark.slow  # real parsers in a child process, large files
def test_a_parser_over_its_time_budget_is_stopped_and_the_next_files_are_read(tmp_path, monkeypatch):
    """trafilatura takes 14 s (here) on 80,000 short paragraphs: the child parsing it is stopped
    after the budget, and the next file (read by a fresh child) is read."""
    monkeypatch.setattr(corpus_module, "PARSE_SECONDS", 1.5)
    paragraphs = "".join(f"<p>Paragraphe {n} : le comité {n % 97} s'est réuni à Mopti.</p>" for n in range(80_000))
    (tmp_path / "lent.html").write_text(f"<html><body><article>{paragraphs}</article></body></html>", encoding="utf-8")
    docx_with_paragraphs(tmp_path / "rapport.docx", ["La mission s'est rendue à Sévaré en mai 2024."])
    documents, failures = read_corpus(tmp_path)
    assert [d.source for d in documents] == ["rapport.docx"] and "Sévaré" in documents[0].text
    assert [f.source for f in failures] == ["lent.html"]
    assert failures[0].reason.startswith("lecture trop longue (plus de 1.5 s)")


@pytest.mark.slow  # real parsers in a child process, large files
def test_a_parser_over_its_memory_budget_is_left_out_and_the_next_files_are_read(tmp_path, monkeypatch):
    """A Word file within the zip limits whose 200,000 paragraphs need more memory to parse than
    the budget (lowered here to 40 MB): left out; the next file is read."""
    monkeypatch.setattr(corpus_module, "PARSE_MEMORY_BYTES", 40_000_000)
    docx_with_paragraphs(tmp_path / "enorme.docx", [f"Paragraphe numéro {n} du rapport." for n in range(200_000)])
    (tmp_path / "note.md").write_text(NOTE, encoding="utf-8")
    docx_with_paragraphs(tmp_path / "rapport.docx", ["La mission s'est rendue à Sévaré en mai 2024."])
    documents, failures = read_corpus(tmp_path)
    assert sorted(d.source for d in documents) == ["note.md", "rapport.docx"]
    assert [f.source for f in failures] == ["enorme.docx"]
    assert failures[0].reason.startswith("lecture trop gourmande en mémoire (plus de 40 Mo)")


# -- 2. names that are not UTF-8 ------------------------------------------------------------------
def test_a_name_that_is_not_utf8_is_indexed_under_its_decoded_name(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    raw_name = os.path.join(os.fsencode(corpus), b"rapport-\xe9t\xe9.txt")
    with open(raw_name, "wb") as out:
        out.write("La saison des pluies a retardé la mission à Mopti en juillet 2023.".encode("utf-8"))
    (corpus / "note.md").write_text(NOTE, encoding="utf-8")
    settings = load_settings(env={}, corpus_dir=corpus, index_dir=tmp_path / "index", data_dir=tmp_path / "data")
    index, summary = update_index(settings, HashingEmbedder(), log=lambda m: None)  # files store: JSON on disk
    assert summary["added"] == ["note.md", "rapport-été.txt"] and not summary["failed"]
    json.dumps(summary, ensure_ascii=False).encode("utf-8")  # what `assistant index --json` prints
    report = next(c for c in index.chunks if c.source == "rapport-été.txt")
    assert report.document == "rapport-été" and report.title == "rapport été"
    # Stable: the next run finds nothing changed, and the name leads back to the file.
    _, again = update_index(settings, HashingEmbedder(), log=lambda m: None)
    assert again["unchanged"] == ["note.md", "rapport-été.txt"] and again["chunks_embedded"] == 0
    assert os.fsencode(corpus_file(corpus, "rapport-été.txt")) == raw_name
    assert source_name(Path(os.fsdecode(raw_name)).relative_to(corpus)) == "rapport-été.txt"
    library = Library(corpus, 10_000_000)
    assert {e.source: e.status for e in library.catalogue(index)} == {"note.md": "indexed", "rapport-été.txt": "indexed"}
    kept = library.remove("rapport-été.txt")
    assert kept.exists() and not os.path.exists(raw_name)


def test_a_decoded_name_that_is_another_file_s_is_left_out_with_a_readable_name(tmp_path):
    (tmp_path / "été.txt").write_text("Le texte en UTF-8.", encoding="utf-8")
    with open(os.path.join(os.fsencode(tmp_path), b"\xe9t\xe9.txt"), "wb") as out:
        out.write(b"Le texte au nom Windows.")
    documents, failures = read_corpus(tmp_path)
    assert [d.source for d in documents] == ["été.txt"] and documents[0].text == "Le texte en UTF-8."
    assert [f.source for f in failures] == ["\\xe9t\\xe9.txt"] and "renommez-le" in failures[0].reason
    json.dumps([f.to_dict() for f in failures], ensure_ascii=False).encode("utf-8")


# -- 11. encodings, a page on one line, Markdown escapes -------------------------------------------
@pytest.mark.parametrize("codec", ["utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-le", "utf-32-be"])
def test_utf16_and_utf32_with_a_byte_order_mark_are_read(tmp_path, codec):
    text = "# Rapport\n\nLa médiation a réuni les éleveurs et les agriculteurs à Ténenkou en 2023.\n"
    bom = {"utf-16-le": b"\xff\xfe", "utf-16-be": b"\xfe\xff", "utf-32-le": b"\xff\xfe\x00\x00",
           "utf-32-be": b"\x00\x00\xfe\xff"}.get(codec, b"")
    content = bom + text.encode(codec)  # Python's "utf-16" and "utf-32" write their own mark
    (tmp_path / "bloc-notes.txt").write_bytes(content)
    page = f"<html><head><title>Page</title></head><body><article><p>{text}</p></article></body></html>"
    (tmp_path / "page.html").write_bytes(bom + page.encode(codec))
    documents, failures = read_corpus(tmp_path)
    assert not failures, failures
    note, web = documents
    assert note.text == text
    assert "Ténenkou en 2023" in web.text and web.title == "Page"
    assert matches_type(".txt", content) and matches_type(".html", bom + page.encode(codec))  # uploads too


@pytest.mark.slow  # real parsers in a child process, large files
def test_a_web_page_of_10_mb_on_one_line_is_read(tmp_path):
    body = " ".join(f"Phrase {n} : le dialogue avance à Mopti." for n in range(260_000))
    page = f"<html><head><title>Long</title></head><body><article><p>{body}</p></article></body></html>"
    assert len(page) > 10_000_000 and "\n" not in page
    (tmp_path / "long.html").write_text(page, encoding="utf-8")
    documents, failures = read_corpus(tmp_path)
    assert not failures, failures
    assert documents[0].text.startswith("Phrase 0 : le dialogue") and "Phrase 259999 :" in documents[0].text


def test_web_page_text_holds_the_words_not_markdown_escapes(tmp_path):
    page = """<html><head><title>Balises</title></head><body><article><h1>Notes techniques</h1>
    <p>La balise &lt;script&gt; est retirée ; le texte **gras** littéral, a_b_c, 2*3*4, [crochets], `code` et
    C:\\dossier\\*.txt restent tels quels dans les notes de la formation de Mopti.</p>
    <p>Un <b>mot en gras</b>, un <i>mot en italique</i>, un <del>mot barré</del> et <code>x_y*z</code> aussi.</p>
    <p>- ce tiret commence le paragraphe et # ce croisillon aussi, dans les notes de la formation.</p>
    </article></body></html>"""
    (tmp_path / "notes.html").write_text(page, encoding="utf-8")
    [document], _ = read_corpus(tmp_path)
    text = document.text
    assert "La balise <script> est retirée ; le texte **gras** littéral, a_b_c, 2*3*4, [crochets], `code` et" in text
    assert "C:\\dossier\\*.txt restent" in text
    assert "Un mot en gras, un mot en italique, un mot barré et x_y*z aussi." in text
    assert "\n- ce tiret commence le paragraphe et # ce croisillon aussi" in "\n" + text
    assert "\\<" not in text and "\\*" not in text.replace("\\dossier\\*", "") and "\\_" not in text
    assert "\\[" not in text and "\\-" not in text and "\\`" not in text


# -- 10. links ------------------------------------------------------------------------------------
def test_links_never_reach_a_hidden_file_and_a_file_reached_twice_is_read_once(tmp_path):
    corpus = tmp_path / "corpus"
    (corpus / ".prive").mkdir(parents=True)
    (corpus / "rapports").mkdir()
    secret = "Le code d'accès du coffre est 4471."
    (corpus / ".prive" / "secret.md").write_text(f"# Secret\n\n{secret}\n", encoding="utf-8")
    (corpus / ".brouillon.txt").write_text(secret, encoding="utf-8")
    (corpus / "rapports" / "note.md").write_text(NOTE, encoding="utf-8")
    # Links in the documents' own text: never followed (the reader reads each file's text alone).
    (corpus / "liens.md").write_text("# Liens\n\nVoir [le secret](.prive/secret.md) et [le brouillon](.brouillon.txt).\n",
                                     encoding="utf-8")
    (corpus / "liens.html").write_text(
        "<html><head><title>Liens</title></head><body><article><p>Les comptes rendus des réunions de Mopti sont "
        "en ligne : <a href='.prive/secret.md'>le secret</a>, <a href='.brouillon.txt'>le brouillon</a>.</p>"
        "</article></body></html>", encoding="utf-8")
    # Links on disk: to a hidden file, to a hidden folder, to a file of the corpus, to a folder of it.
    (corpus / "visible.md").symlink_to(".prive/secret.md")
    (corpus / "public").symlink_to(".prive", target_is_directory=True)
    (corpus / "copie.md").symlink_to("rapports/note.md")
    (corpus / "tous").symlink_to("rapports", target_is_directory=True)
    # A hard link is the same file too: read once, under the first of its names.
    os.link(corpus / "rapports" / "note.md", corpus / "rapports" / "suite.md")
    documents, failures = read_corpus(corpus)
    assert sorted(d.source for d in documents) == ["liens.html", "liens.md", "rapports/note.md"]
    assert all(secret not in d.text and "4471" not in d.text for d in documents)
    reasons = {f.source: f.reason for f in failures}
    assert reasons == {"copie.md": "même fichier que « rapports/note.md » (lu une seule fois)",
                       "rapports/suite.md": "même fichier que « rapports/note.md » (lu une seule fois)",
                       "visible.md": "lien vers un fichier caché (non suivi)"}
    # The Sources links of the web app serve no hidden file either, whatever the link.
    assert corpus_file(corpus, "visible.md") is None and corpus_file(corpus, "public/secret.md") is None
    assert corpus_file(corpus, "copie.md") is not None
