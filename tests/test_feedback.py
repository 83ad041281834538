"""Feedback store (SQLite, WAL) and its export to the shared eval format."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

import pytest

from assistant.cli import main as cli_main
from assistant.feedback import DB_NAME, FeedbackStore
from evals.dataset import load_dataset

BARKHANE = "Quand l'opération Barkhane s'est-elle retirée du Mali ?"
BUDGET = "Quel est le budget du programme ?"


@pytest.fixture()
def store(tmp_path: Path) -> FeedbackStore:
    return FeedbackStore.in_dir(tmp_path / "data")


def _answer(text: str = "Le 15 août 2022 [1].", abstained: bool = False) -> dict:
    citations = [] if abstained else [{
        "number": 1, "text": "Avant. Le 15 août 2022. Après.", "document": "d", "title": "T", "source": "d.txt",
        "section": "S", "start": 0, "end": 30, "score": 0.9, "highlights": [[8, 23]], "quotes": ["Le 15 août 2022."]}]
    return {"text": text, "citations": citations, "abstained": abstained, "query": "q", "question": "q",
            "language": "fr", "engine": "extractive", "timings": {}, "notices": []}


def test_rate_change_comment_withdraw(store: FeedbackStore) -> None:
    history = [{"role": "user", "content": "Avant ?"}, {"role": "assistant", "content": "Oui [1]."}]
    first = store.rate("conv", 1, "up", "Quand ?", history, _answer())
    assert store.comment(first, "  Très clair.  ")
    again = store.rate("conv", 1, "down", "Quand ?", history, _answer())  # the user changes their mind
    assert again == first
    (row,) = store.all()
    # The praise does not stay beside the 👎 (issue 13); the same rating again keeps its comment.
    assert (row.rating, row.comment, row.question, row.history) == ("down", "", "Quand ?", history)
    assert store.comment(first, "Il manque la date.") and store.rate("conv", 1, "down", "Quand ?", history, _answer())
    assert store.all()[0].comment == "Il manque la date."
    assert row.answer == "Le 15 août 2022 [1]." and row.engine == "extractive" and row.created_at
    assert row.citations[0]["quotes"] == ["Le 15 août 2022."]
    other = store.rate("conv", 2, "up", "Et ensuite ?", [], _answer())
    assert other != first and len(store.all()) == 2 and len(store.all("up")) == 1
    assert store.withdraw("conv", 1) and [r.turn for r in store.all()] == [2]
    assert not store.comment(first, "trop tard")  # the row is gone
    with pytest.raises(ValueError):
        store.rate("conv", 3, "bof", "?", [], _answer())


def test_sqlite_file_is_in_wal_mode_under_the_data_dir(tmp_path: Path) -> None:
    store = FeedbackStore.in_dir(tmp_path / "nested" / "data")
    assert store.path == tmp_path / "nested" / "data" / DB_NAME and store.path.exists()
    with sqlite3.connect(store.path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_concurrent_writers(store: FeedbackStore) -> None:
    threads = [threading.Thread(target=store.rate, args=("conv", n, "up", f"Q{n} ?", [], _answer())) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r.turn for r in store.all()) == list(range(12))


def test_export_of_real_answers_is_a_valid_eval_dataset(store: FeedbackStore, assistant, documents, tmp_path: Path) -> None:
    corpus_text = "\n".join(d.text for d in documents)
    good = assistant.ask(BARKHANE).to_dict()
    absent = assistant.ask(BUDGET).to_dict()
    assert not good["abstained"] and absent["abstained"]
    history = [{"role": "user", "content": BARKHANE}, {"role": "assistant", "content": good["text"]}]
    follow = assistant.ask("Et quand a-t-elle officiellement pris fin ?", history).to_dict()
    store.rate("c1", 0, "up", BARKHANE, [], good)
    store.rate("c1", 1, "down", "Et quand a-t-elle officiellement pris fin ?", history, follow,
               comment="Il manque la date de fin officielle.")
    store.rate("c2", 0, "up", BUDGET, [], absent)
    store.rate("c3", 0, "down", BUDGET, [], absent)

    out = tmp_path / "feedback.jsonl"
    with out.open("w", encoding="utf-8") as handle:
        assert store.export_eval(handle) == 4
    items, problems = load_dataset(out)
    assert problems == [] and len(items) == 4
    by_id = {item.id: item for item in items}
    assert len(by_id) == 4 and all(i.startswith("feedback-") for i in by_id)

    confirmed, corrected, unanswerable, false_abstention = items
    # 👍 on an answer: a ready test case whose evidence is verbatim corpus text.
    assert confirmed.question == BARKHANE and confirmed.answerable and not confirmed.history
    assert confirmed.evidence and all(e in corpus_text for e in confirmed.evidence)
    assert any("15 août 2022" in e for e in confirmed.evidence)
    assert "[1]" not in confirmed.reference_answer and "15 août 2022" in confirmed.reference_answer
    assert confirmed.extra["status"] == "confirmed" and confirmed.extra["feedback"]["rating"] == "up"
    # 👎 with a comment and a history: kept for review, conversation and comment preserved.
    assert corrected.history == tuple(history) and corrected.category == "multi-turn"
    assert not corrected.evidence and not corrected.must_include
    assert corrected.extra["status"] == "to_review"
    assert corrected.extra["feedback"]["comment"] == "Il manque la date de fin officielle."
    assert corrected.extra["feedback"]["answer"] == follow["text"]
    assert corrected.extra["feedback"]["citations"][0]["quotes"]
    # 👍 on an abstention: the documents do not say.
    assert unanswerable.answerable is False and unanswerable.category == "unanswerable"
    # 👎 on an abstention: a probable false abstention, to be completed by an evaluator.
    assert false_abstention.answerable and false_abstention.extra["status"] == "to_review"
    assert false_abstention.extra["feedback"]["abstained"] is True


def test_cli_feedback_export(store: FeedbackStore, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    store.rate("c1", 0, "up", "Quand ?", [], _answer())
    store.rate("c1", 1, "down", "Et où ?", [{"role": "user", "content": "Quand ?"},
                                           {"role": "assistant", "content": "Le 15 août 2022 [1]."}], _answer())
    data_dir = str(store.path.parent)
    out = tmp_path / "exports" / "feedback.jsonl"
    assert cli_main(["feedback", "export", "--data", data_dir, "--out", str(out)]) == 0
    assert "2 avis" in capsys.readouterr().err
    items, _ = load_dataset(out)
    assert [i.question for i in items] == ["Quand ?", "Et où ?"]

    assert cli_main(["feedback", "export", "--data", data_dir, "--rating", "down"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 1 and json.loads(lines[0])["feedback"]["rating"] == "down"

    assert cli_main(["feedback", "export", "--data", str(tmp_path / "none")]) == 1
    assert "Aucun avis" in capsys.readouterr().err


@pytest.mark.slow
def test_writes_killed_at_random_points_lose_nothing_acknowledged(tmp_path: Path) -> None:
    """kill -9 a writer at random moments: every write it acknowledged is there, the file is intact,
    and the next writer carries on."""
    import random
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    path = tmp_path / "feedback.sqlite3"
    script = ("import sys\nfrom assistant.feedback import FeedbackStore\n"
              "store = FeedbackStore(sys.argv[1])\nrun = sys.argv[2]\n"
              "for turn in range(100000):\n"
              "    store.rate(run, turn, 'up', 'Question ?', [], {'text': 'Réponse [1].', 'citations': []})\n"
              "    print(turn, flush=True)\n")
    rng = random.Random(7)
    acknowledged = 0
    for run in range(5):
        child = subprocess.Popen([sys.executable, "-c", script, str(path), f"run{run}"], stdout=subprocess.PIPE,
                                 stderr=subprocess.DEVNULL, text=True)
        time.sleep(0.5 + rng.random())
        child.send_signal(signal.SIGKILL)
        out, _ = child.communicate(timeout=30)
        acknowledged += len(out.split())
        assert acknowledged > 0
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = db.execute("SELECT count(*) FROM feedback").fetchone()[0]
    assert stored >= acknowledged  # a write may land just before its acknowledgement is printed
    assert stored <= acknowledged + 5
    FeedbackStore(path).rate("after", 0, "down", "Q ?", [], {"text": "R.", "citations": []})
    assert len(FeedbackStore(path).all()) == stored + 1
