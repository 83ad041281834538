"""Saved conversations, per user: listed, reopened, renamed, deleted; kept in the same SQLite file
as the feedback (``feedback.sqlite3`` in the data folder), so they survive a reload and a restart.

``owner`` is whoever the web app says the user is (a signed-in name, or a browser's own id on
localhost); every read and write is limited to that owner's rows.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from .feedback import DB_NAME, connect, now_utc, open_database

MAX_TITLE = 120
MAX_CONVERSATIONS = 200  # listed per owner, most recent first

_SCHEMA = """
CREATE TABLE IF NOT EXISTS conversations (
    id TEXT PRIMARY KEY,
    owner TEXT NOT NULL,
    title TEXT NOT NULL,
    turns TEXT NOT NULL,        -- JSON list of {"question", "answer": Answer.to_dict(), ...}
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS conversations_by_owner ON conversations (owner, updated_at);
"""


@dataclass(frozen=True)
class ConversationInfo:
    id: str
    title: str
    turns: int
    updated_at: str

    def to_dict(self) -> dict:
        return asdict(self)


def default_title(question: str) -> str:
    """The first question, on one line, cut at a word near ``MAX_TITLE`` / 2 characters."""
    line = " ".join(question.split())
    if len(line) <= MAX_TITLE // 2:
        return line
    return line[:MAX_TITLE // 2].rsplit(" ", 1)[0] + " …"


class ConversationStore:
    def __init__(self, path: str | Path) -> None:
        self.path = open_database(path, _SCHEMA, "Base des conversations")

    @classmethod
    def in_dir(cls, data_dir: str | Path) -> "ConversationStore":
        return cls(Path(data_dir) / DB_NAME)

    def save(self, owner: str, conversation: str, turns: list[dict[str, Any]]) -> None:
        """Write (or replace) a conversation's turns; its title is the first question unless renamed."""
        if not owner or not conversation or not turns:
            raise ValueError("Conversation vide ou sans propriétaire : rien à enregistrer.")
        now = now_utc("microseconds")  # to the microsecond: the list is ordered by the last change
        with connect(self.path) as db:
            updated = db.execute("UPDATE conversations SET turns = ?, updated_at = ? WHERE id = ? AND owner = ?",
                                 (json.dumps(turns, ensure_ascii=False), now, conversation, owner)).rowcount
            if not updated:
                db.execute("INSERT OR IGNORE INTO conversations (id, owner, title, turns, created_at, updated_at) "
                           "VALUES (?, ?, ?, ?, ?, ?)",
                           (conversation, owner, default_title(turns[0]["question"]),
                            json.dumps(turns, ensure_ascii=False), now, now))

    def list(self, owner: str) -> list[ConversationInfo]:
        with connect(self.path) as db:
            rows = db.execute("SELECT id, title, json_array_length(turns) AS n, updated_at FROM conversations "
                              "WHERE owner = ? ORDER BY updated_at DESC, rowid DESC LIMIT ?",
                              (owner, MAX_CONVERSATIONS)).fetchall()
        return [ConversationInfo(r["id"], r["title"], int(r["n"]), r["updated_at"]) for r in rows]

    def load(self, owner: str, conversation: str) -> list[dict[str, Any]] | None:
        with connect(self.path) as db:
            row = db.execute("SELECT turns FROM conversations WHERE id = ? AND owner = ?",
                             (conversation, owner)).fetchone()
        return None if row is None else json.loads(row["turns"])

    def rename(self, owner: str, conversation: str, title: str) -> bool:
        title = " ".join((title or "").split())
        if not title:
            raise ValueError("Le nouveau nom est vide.")
        if len(title) > MAX_TITLE:
            raise ValueError(f"Le nom fait {len(title)} caractères ; {MAX_TITLE} au plus.")
        with connect(self.path) as db:
            return db.execute("UPDATE conversations SET title = ? WHERE id = ? AND owner = ?",
                              (title, conversation, owner)).rowcount == 1

    def delete(self, owner: str, conversation: str) -> bool:
        with connect(self.path) as db:
            return db.execute("DELETE FROM conversations WHERE id = ? AND owner = ?",
                              (conversation, owner)).rowcount == 1
