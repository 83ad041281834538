"""Loading the corpus: metadata, offsets and clear errors for unusable input."""

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from assistant.corpus import load_corpus, read_corpus
from assistant.errors import AssistantError


def test_real_corpus_has_metadata(documents):
    assert documents, "the corpus folder must hold at least one document"
    doc = documents[0]
    assert doc.title and doc.metadata.get("language") == "fr"
    assert doc.metadata.get("organisation") and doc.metadata.get("source")
    assert len(doc.sha256) == 64


def test_front_matter_is_metadata_and_offsets_stay_in_the_file(tmp_path):
    text = "---\ntitle: Note de terrain\nlanguage: fr\n---\nContexte\n\nUn paragraphe.\n"
    (tmp_path / "note.md").write_text(text, encoding="utf-8")
    [doc] = load_corpus(tmp_path)
    assert doc.title == "Note de terrain" and doc.metadata["language"] == "fr"
    assert doc.text == text and doc.text[doc.body_start:].startswith("Contexte")


def test_windows_1252_file_is_read_and_unreadable_files_are_left_out_with_a_reason(tmp_path):
    (tmp_path / "ok.txt").write_text("Texte valide.", encoding="utf-8")
    (tmp_path / "windows.txt").write_bytes("Sécurité et dialogue « inclusif ».".encode("cp1252"))
    (tmp_path / "vide.txt").write_text("  \n\n", encoding="utf-8")
    (tmp_path / "binaire.txt").write_bytes(b"\x81\x8d\x8f\x90\x9d" * 50)  # bytes Windows-1252 lacks
    documents, failures = read_corpus(tmp_path)
    assert [d.source for d in documents] == ["ok.txt", "windows.txt"]
    assert documents[1].text == "Sécurité et dialogue « inclusif »."
    reasons = {f.source: f.reason for f in failures}
    assert reasons["vide.txt"] == "vide" and "UTF-8" in reasons["binaire.txt"]
    assert load_corpus(tmp_path) == documents


def test_sub_folders_are_read_and_a_size_limit_applies(tmp_path):
    (tmp_path / "rapports" / "2023").mkdir(parents=True)
    (tmp_path / "rapports" / "2023" / "note.md").write_text("# Titre\n\nUne note.", encoding="utf-8")
    (tmp_path / "rapports" / "note.md").write_text("Une autre note.", encoding="utf-8")
    (tmp_path / ".cache").mkdir()
    (tmp_path / ".cache" / "brouillon.txt").write_text("Caché.", encoding="utf-8")
    (tmp_path / "gros.txt").write_text("x " * 600, encoding="utf-8")
    documents, failures = read_corpus(tmp_path, max_bytes=1000)
    assert [d.source for d in documents] == ["rapports/2023/note.md", "rapports/note.md"]
    assert len({d.id for d in documents}) == 2, "same file name in two folders: two documents"
    assert [f.source for f in failures] == ["gros.txt"] and "trop volumineux" in failures[0].reason


def test_empty_and_missing_corpus(tmp_path):
    (tmp_path / "notes.rtf").write_bytes(b"{\\rtf1 Bonjour}")  # not a supported format
    with pytest.raises(AssistantError, match="aucun document"):
        load_corpus(tmp_path)
    (tmp_path / "vide.txt").write_text("", encoding="utf-8")
    with pytest.raises(AssistantError, match=r"aucun document.*vide\.txt, vide"):
        load_corpus(tmp_path)
    with pytest.raises(AssistantError, match="introuvable"):
        load_corpus(tmp_path / "absent")


def test_symlink_out_of_the_corpus_is_never_read(tmp_path):
    corpus, secret = tmp_path / "corpus", tmp_path / "secret.txt"
    corpus.mkdir()
    secret.write_text("Mot de passe : hunter2.", encoding="utf-8")
    (corpus / "note.txt").write_text("Une note du programme.", encoding="utf-8")
    (corpus / "fuite.txt").symlink_to(secret)
    (corpus / "passwd.txt").symlink_to("/etc/passwd")
    inside = corpus / "alias.txt"
    inside.symlink_to(corpus / "note.txt")  # a link that stays inside is read, once: under the file's own name
    documents, failures = read_corpus(corpus)
    assert [d.source for d in documents] == ["note.txt"]
    assert all("hunter2" not in d.text and "root:" not in d.text for d in documents)
    reasons = {f.source: f.reason for f in failures}
    assert sorted(reasons) == ["alias.txt", "fuite.txt", "passwd.txt"]
    assert "hors du dossier" in reasons["fuite.txt"] and "hors du dossier" in reasons["passwd.txt"]
    assert "même fichier que « note.txt »" in reasons["alias.txt"]


def test_control_bytes_are_not_a_document(tmp_path):
    (tmp_path / "ok.txt").write_text("Texte valide.", encoding="utf-8")
    (tmp_path / "binaire.txt").write_text("\x00\x1b\x07" * 200 + "abc", encoding="utf-8")
    documents, failures = read_corpus(tmp_path)
    assert [d.source for d in documents] == ["ok.txt"]
    assert failures[0].source == "binaire.txt" and "pas du texte" in failures[0].reason


@pytest.mark.parametrize("manifest, key", [
    ('"file.txt" = 5', "file.txt"),
    ('files = 5', "files"),
    ('[files]\n"ok.txt" = 5', "ok.txt"),
    ('[files."ok.txt"]\ntitle = 3', "title"),
])
def test_manifest_of_the_wrong_shape_names_the_key(tmp_path, manifest, key):
    (tmp_path / "ok.txt").write_text("Texte valide.", encoding="utf-8")
    (tmp_path / "manifest.toml").write_text(manifest, encoding="utf-8")
    with pytest.raises(AssistantError, match=rf"manifest\.toml.*{key}"):
        load_corpus(tmp_path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.dictionaries(st.sampled_from(["a.txt", "b.md", "manifest.toml", "c.TXT", "d.pdf", "e.docx"]),
                       st.one_of(st.binary(max_size=300), st.text(max_size=300).map(lambda t: t.encode("utf-8"))),
                       max_size=4))
def test_any_folder_loads_or_is_one_clear_error(tmp_path_factory, files):
    folder = tmp_path_factory.mktemp("fuzz")
    for name, content in files.items():
        (folder / name).write_bytes(content)
    try:
        documents = load_corpus(folder)
    except AssistantError as error:
        assert str(error)
        return
    for document in documents:
        assert document.text[document.body_start:].strip() and document.source in files
