"""Feedback on answers (👍/👎 and an optional comment), kept in SQLite, exported as eval items.

One row per rated answer: the question, the conversation before it, the answer and its citations,
the engine and the times. A user who changes their mind updates the same row (one row per
conversation turn); withdrawing the rating deletes it.

The export turns real questions into items of the shared eval format (docs: eval-format.md):

- 👍 on an answer: a confirmed case. ``evidence`` holds the cited sentences (verbatim corpus text),
  ``reference_answer`` the answer without its markers; retrieval and citation metrics can use them.
- 👍 on an abstention: the user agrees the documents do not say; ``answerable: false``.
- 👎 (answer or abstention): the right answer is not known yet. The item carries no evidence and
  ``status: "to_review"`` so that an evaluator completes ``must_include`` / ``evidence`` or sets
  ``answerable`` before using it as a test. 👎 on an abstention suggests a false abstention.

Everything else (rating, comment, the given answer and citations, engine, dates) travels as extra
fields under ``feedback``, which the format allows.
"""

from __future__ import annotations

import json
import re
import sqlite3
from contextlib import closing, contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, TextIO

from .errors import AssistantError

RATINGS = ("up", "down")
DB_NAME = "feedback.sqlite3"
_MARKER = re.compile(r"\s*\[\d+\]")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation TEXT NOT NULL,
    turn INTEGER NOT NULL,
    rating TEXT NOT NULL CHECK (rating IN ('up', 'down')),
    comment TEXT NOT NULL DEFAULT '',
    question TEXT NOT NULL,
    history TEXT NOT NULL,      -- JSON list of {"role", "content"}
    answer TEXT NOT NULL,
    abstained INTEGER NOT NULL,
    citations TEXT NOT NULL,    -- JSON list of Citation.to_dict()
    query TEXT NOT NULL DEFAULT '',
    language TEXT NOT NULL DEFAULT '',
    engine TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    UNIQUE (conversation, turn)
);
"""


def open_database(path: str | Path, schema: str, what: str) -> Path:
    """The SQLite file at ``path`` in WAL mode (the server writes while an export reads), with
    ``schema`` applied; AssistantError naming ``what`` when it cannot be used."""
    path = Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with connect(path) as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(schema)
    except (OSError, sqlite3.Error) as exc:
        raise AssistantError(f"{what} inutilisable ({path}) : {exc}.") from exc
    return path


@contextmanager
def connect(path: Path) -> Iterator[sqlite3.Connection]:
    """One short connection per operation (Gradio calls handlers from several threads), committed
    or rolled back as a whole."""
    with closing(sqlite3.connect(path, timeout=10)) as db:
        db.row_factory = sqlite3.Row
        with db:
            yield db


def now_utc(timespec: str = "seconds") -> str:
    return datetime.now(timezone.utc).isoformat(timespec=timespec)


@dataclass(frozen=True)
class Feedback:
    id: int
    conversation: str
    turn: int
    rating: str
    comment: str
    question: str
    history: list
    answer: str
    abstained: bool
    citations: list
    query: str
    language: str
    engine: str
    created_at: str
    updated_at: str

    def to_eval_item(self) -> dict[str, Any]:
        """This feedback as one line of the shared eval format (see the module docstring)."""
        item: dict[str, Any] = {"id": f"feedback-{self.id}", "question": self.question}
        if self.history:
            item["history"] = [{"role": t["role"], "content": t["content"]} for t in self.history]
        if self.language:
            item["lang"] = self.language
        if self.rating == "up" and self.abstained:
            item["answerable"] = False
            item["status"] = "confirmed"
        elif self.rating == "up":
            item["answerable"] = True
            quotes = [q for c in self.citations for q in (c.get("quotes") or [c.get("text", "")]) if q.strip()]
            if quotes:
                item["evidence"] = list(dict.fromkeys(quotes))
            item["reference_answer"] = _MARKER.sub("", self.answer).strip()
            item["status"] = "confirmed"
        else:
            item["status"] = "to_review"
        item["feedback"] = {
            "rating": self.rating, "comment": self.comment, "answer": self.answer,
            "abstained": self.abstained, "query": self.query, "engine": self.engine,
            "citations": [{k: c.get(k) for k in ("number", "document", "title", "section", "source", "start",
                                                  "end", "quotes")} for c in self.citations],
            "created_at": self.created_at, "updated_at": self.updated_at,
        }
        return item


class FeedbackStore:
    """The SQLite file (WAL mode: the server writes while an export reads)."""

    def __init__(self, path: str | Path) -> None:
        self.path = open_database(path, _SCHEMA, "Base des avis")

    @classmethod
    def in_dir(cls, data_dir: str | Path) -> "FeedbackStore":
        return cls(Path(data_dir) / DB_NAME)

    def _connect(self) -> Any:
        return connect(self.path)

    def rate(self, conversation: str, turn: int, rating: str, question: str, history: list[dict],
             answer: dict, comment: str | None = None) -> int:
        """Record (or change) the rating of one answer; returns the row id. A comment made for the
        other rating is dropped (praise stored beside 👎 would say the opposite of what was meant).

        ``answer`` is ``Answer.to_dict()``; ``history`` the conversation before the question.
        """
        if rating not in RATINGS:
            raise ValueError(f"Note inconnue {rating!r} : 'up' ou 'down'.")
        now = now_utc()
        citations = [{k: v for k, v in c.items()} for c in answer.get("citations", [])]
        with self._connect() as db:
            db.execute(
                """INSERT INTO feedback (conversation, turn, rating, comment, question, history, answer,
                       abstained, citations, query, language, engine, created_at, updated_at)
                   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                   ON CONFLICT (conversation, turn) DO UPDATE SET
                       rating = excluded.rating, updated_at = excluded.updated_at,
                       comment = CASE WHEN ? IS NOT NULL THEN excluded.comment
                                      WHEN feedback.rating = excluded.rating THEN feedback.comment
                                      ELSE '' END""",
                (conversation, turn, rating, comment or "", question, json.dumps(history, ensure_ascii=False),
                 answer.get("text", ""), int(bool(answer.get("abstained"))),
                 json.dumps(citations, ensure_ascii=False), answer.get("query", ""), answer.get("language", ""),
                 answer.get("engine", ""), now, now, comment))
            row = db.execute("SELECT id FROM feedback WHERE conversation = ? AND turn = ?",
                             (conversation, turn)).fetchone()
        return int(row["id"])

    def comment(self, feedback_id: int, text: str) -> bool:
        """Attach (replace) the comment of a rated answer; False when the row no longer exists."""
        with self._connect() as db:
            cursor = db.execute("UPDATE feedback SET comment = ?, updated_at = ? WHERE id = ?",
                                (text.strip(), now_utc(), feedback_id))
        return cursor.rowcount > 0

    def withdraw(self, conversation: str, turn: int) -> bool:
        """The user clicked their rating again: forget it."""
        with self._connect() as db:
            cursor = db.execute("DELETE FROM feedback WHERE conversation = ? AND turn = ?", (conversation, turn))
        return cursor.rowcount > 0

    def all(self, rating: str | None = None) -> list[Feedback]:
        query, params = "SELECT * FROM feedback", ()
        if rating:
            query, params = query + " WHERE rating = ?", (rating,)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY id", params).fetchall()
        return [Feedback(**{**dict(row), "history": json.loads(row["history"]),
                            "citations": json.loads(row["citations"]), "abstained": bool(row["abstained"])})
                for row in rows]

    def export_eval(self, out: TextIO, rating: str | None = None) -> int:
        """Write every feedback as eval JSON Lines; returns the number of lines."""
        items = self.all(rating)
        for item in items:
            out.write(json.dumps(item.to_eval_item(), ensure_ascii=False) + "\n")
        return len(items)
