"""The `assistant` command on the real index: index, search, ask, chat, and bad input."""

import json

import pytest

from assistant.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture()
def where(settings, assistant):  # the session index is built before the CLI loads it
    return ["--index", str(settings.index_dir), "--corpus", str(settings.corpus_dir)]


def test_index_prints_a_summary(where, capsys):
    assert main(["index", *where]) == 0
    out = capsys.readouterr().out
    assert "document(s)" in out and "passages" in out and " s" in out


def test_search_json(where, capsys):
    assert main(["search", "Qui préside la médiation internationale ?", "-k", "2", "--json", *where]) == 0
    passages = json.loads(capsys.readouterr().out)
    assert len(passages) == 2 and {"text", "section", "start", "end", "score"} <= set(passages[0])


def test_search_text_shows_location_and_scores(where, capsys):
    assert main(["search", "camps de réfugiés", *where]) == 0
    out = capsys.readouterr().out
    assert "›" in out and "score=" in out and out.startswith("1. ")


def test_ask_prints_answer_then_numbered_sources(where, capsys):
    assert main(["ask", "Que signifie le sigle MINUSMA ?", *where]) == 0
    out = capsys.readouterr().out
    answer, sources = out.split("\nSources :\n")
    assert "[1]" in answer and "Mission des Nations Unies au Mali" in answer
    assert sources.startswith("[1] ") and "›" in sources and "»»" in sources and "««" in sources


def test_ask_json_is_the_answer_dict(where, capsys):
    assert main(["ask", "Quel est le budget du programme ?", "--json", *where]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data["abstained"] is True and data["citations"] == []


def test_empty_question_exits_2_with_a_message(where, capsys):
    assert main(["ask", "   ", *where]) == 2
    captured = capsys.readouterr()
    assert "vide" in captured.err and "Traceback" not in captured.err


def test_missing_corpus_is_one_sentence(tmp_path, capsys):
    assert main(["index", "--corpus", str(tmp_path / "absent"), "--index", str(tmp_path / "i")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("Erreur : Dossier du corpus introuvable") and "Traceback" not in err


def test_chat_keeps_the_history(where, capsys, monkeypatch):
    lines = iter(["Quand l’opération Barkhane a-t-elle quitté le Mali ?", "Et quand a-t-elle officiellement pris fin ?", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(lines))
    assert main(["chat", *where]) == 0
    out = capsys.readouterr().out
    assert "15 août 2022" in out and "9 novembre 2022" in out


def test_search_with_k_below_one_exits_2(where, capsys):
    for k in ("0", "-1"):
        assert main(["search", "camps de réfugiés", "-k", k, *where]) == 2
        err = capsys.readouterr().err
        assert "k doit être un entier positif" in err and "Traceback" not in err


def test_invalid_text_on_the_command_line_is_a_message(where, capsys):
    # Bytes that are not UTF-8 reach Python as lone surrogates (surrogateescape).
    assert main(["ask", "Caf\udce9 ?", *where]) == 2
    err = capsys.readouterr().err
    assert "caractère invalide" in err and "Traceback" not in err


def test_chat_goes_on_after_a_line_that_is_not_utf8(where, capsys, monkeypatch):
    def lines():
        yield "Qui préside la médiation \udce9 ?"  # a Latin-1 byte read as a surrogate
        raise UnicodeDecodeError("utf-8", b"\xe9", 0, 1, "invalid continuation byte")

    source = lines()
    answers = iter(["Quand l’opération Barkhane a-t-elle quitté le Mali ?", ""])
    monkeypatch.setattr("builtins.input", lambda prompt="": next(source, None) or next(answers))
    assert main(["chat", *where]) == 0
    captured = capsys.readouterr()
    assert "caractère invalide" in captured.err and "pas du texte UTF-8" in captured.err
    assert "15 août 2022" in captured.out


def test_index_json_is_one_object(where, capsys):
    assert main(["index", "--json", *where]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["documents"] >= 1 and summary["failed"] == [] and isinstance(summary["seconds"], float)
    assert set(summary) == {"documents", "added", "updated", "removed", "unchanged", "failed", "chunks_embedded",
                            "seconds"}


def test_another_corpus_never_takes_the_library_index(settings, tmp_path):
    """`--corpus` for another folder: its own index folder and PostgreSQL schema, unless --index
    names one; the configured corpus keeps the configured index."""
    from pathlib import Path

    from assistant.cli import for_corpus

    same = for_corpus(settings, Path(settings.corpus_dir))
    assert same.index_dir == settings.index_dir and same.database_schema == settings.database_schema
    other = for_corpus(settings, tmp_path / "autre")
    assert other.corpus_dir == tmp_path / "autre"
    assert other.index_dir.parent == Path(settings.data_dir) / "indexes" and other.index_dir != settings.index_dir
    assert other.database_schema.startswith(settings.database_schema + "_")
    assert other.database_schema != for_corpus(settings, tmp_path / "encore").database_schema
    named = for_corpus(settings, tmp_path / "autre", tmp_path / "mon-index")
    assert named.index_dir == tmp_path / "mon-index"
