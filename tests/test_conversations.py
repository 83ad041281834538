"""Saved conversations: per owner, renamed, deleted, kept in the SQLite file across restarts."""

from __future__ import annotations

import pytest

from assistant.conversations import MAX_TITLE, ConversationStore


def _turns(*questions: str) -> list[dict]:
    return [{"question": q, "answer": {"text": f"Réponse à {q} [1]", "citations": []}} for q in questions]


def test_round_trip_owners_rename_delete(tmp_path) -> None:
    store = ConversationStore.in_dir(tmp_path)
    store.save("user:awa", "c1", _turns("Quand l'accord a-t-il été signé ?"))
    store.save("user:awa", "c1", _turns("Quand l'accord a-t-il été signé ?", "Et par qui ?"))
    store.save("user:awa", "c2", _turns("x" * 300))
    store.save("user:moussa", "c1", _turns("Je prends son identifiant"))  # another owner cannot take it over
    listed = ConversationStore.in_dir(tmp_path).list("user:awa")  # a new instance: as after a restart
    assert [c.id for c in listed] == ["c2", "c1"] and listed[1].turns == 2
    assert listed[1].title == "Quand l'accord a-t-il été signé ?" and len(listed[0].title) <= MAX_TITLE
    assert store.list("user:moussa") == [] and store.load("user:moussa", "c1") is None
    assert store.load("user:awa", "c1")[1]["question"] == "Et par qui ?"
    assert store.rename("user:awa", "c1", "  Accord  d'Alger ") and store.list("user:awa")[1].title == "Accord d'Alger"
    store.save("user:awa", "c1", _turns("Quand ?", "Et par qui ?", "Où ?"))  # new turns keep the new name
    assert store.list("user:awa")[0].title == "Accord d'Alger"
    assert not store.rename("user:moussa", "c1", "volé")
    for bad in ("", "   ", "x" * (MAX_TITLE + 1)):
        with pytest.raises(ValueError):
            store.rename("user:awa", "c1", bad)
    assert not store.delete("user:moussa", "c1") and store.delete("user:awa", "c1")
    assert [c.id for c in store.list("user:awa")] == ["c2"]
    with pytest.raises(ValueError):
        store.save("user:awa", "c3", [])
