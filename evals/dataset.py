"""Reading eval datasets in the shared JSON Lines format (``/work/shared/eval-format.md``).

Every line is validated; malformed lines are reported with their line numbers (all of them, not
only the first), duplicate ids are always rejected, unknown fields are kept as they are.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

KNOWN_FIELDS = ("id", "question", "answerable", "must_include", "evidence", "reference_answer", "history", "lang")
CATEGORIES = ("french", "english", "unanswerable", "multi-turn")


class DatasetError(ValueError):
    """A dataset that cannot be used as it is; the message lists the bad lines."""

    def __init__(self, message: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


@dataclass(frozen=True)
class EvalItem:
    id: str
    question: str
    answerable: bool = True
    must_include: tuple[tuple[str, ...], ...] = ()
    evidence: tuple[str, ...] = ()
    reference_answer: str | None = None
    history: tuple[dict, ...] = ()
    lang: str | None = None
    extra: dict = field(default_factory=dict)  # unknown fields, kept as they are
    line: int = 0

    @property
    def category(self) -> str:
        """One of ``CATEGORIES``, exclusive, in this order of precedence: unanswerable, multi-turn,
        english (``lang`` starting with ``en``), french (everything else)."""
        if not self.answerable:
            return "unanswerable"
        if self.history:
            return "multi-turn"
        return "english" if (self.lang or "").lower().startswith("en") else "french"

    def to_dict(self) -> dict[str, Any]:
        data = {"id": self.id, "question": self.question, "answerable": self.answerable}
        if self.must_include:
            data["must_include"] = [list(group) for group in self.must_include]
        if self.evidence:
            data["evidence"] = list(self.evidence)
        if self.reference_answer is not None:
            data["reference_answer"] = self.reference_answer
        if self.history:
            data["history"] = [dict(turn) for turn in self.history]
        if self.lang:
            data["lang"] = self.lang
        return data | self.extra


def _is_str_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) for v in value)


def parse_item(data: Any, line: int = 0) -> EvalItem:
    """One record, validated; ValueError says what is wrong."""
    if not isinstance(data, dict):
        raise ValueError(f"an object {{...}} is expected, not {type(data).__name__}")
    for name in ("id", "question"):
        if name not in data:
            raise ValueError(f"'{name}' is missing")
        if not isinstance(data[name], str) or not data[name].strip():
            raise ValueError(f"'{name}' must be a non-empty string")
    answerable = data.get("answerable", True)
    if not isinstance(answerable, bool):
        raise ValueError("'answerable' must be true or false")
    must = data.get("must_include", [])
    if not isinstance(must, list) or not all(_is_str_list(g) and g for g in must):
        raise ValueError("'must_include' must be a list of non-empty lists of strings")
    if any(not s.strip() for g in must for s in g):
        raise ValueError("'must_include' holds an empty string (it would match any answer)")
    evidence = data.get("evidence", [])
    if not _is_str_list(evidence):
        raise ValueError("'evidence' must be a list of strings")
    if any(not e.strip() for e in evidence):
        raise ValueError("'evidence' holds an empty string (it would match any passage)")
    reference = data.get("reference_answer")
    if reference is not None and not isinstance(reference, str):
        raise ValueError("'reference_answer' must be a string")
    history = data.get("history", [])
    if history is None:
        history = []
    if not isinstance(history, list):
        raise ValueError("'history' must be a list of {role, content}")
    for i, turn in enumerate(history):
        if not isinstance(turn, dict) or turn.get("role") not in ("user", "assistant") \
                or not isinstance(turn.get("content"), str):
            raise ValueError(f"history[{i}] must be {{\"role\": \"user\"|\"assistant\", \"content\": string}}")
    lang = data.get("lang")
    if lang is not None and not isinstance(lang, str):
        raise ValueError("'lang' must be a string")
    return EvalItem(id=data["id"], question=data["question"], answerable=answerable,
                    must_include=tuple(tuple(g) for g in must), evidence=tuple(evidence),
                    reference_answer=reference, history=tuple(dict(t) for t in history), lang=lang,
                    extra={k: v for k, v in data.items() if k not in KNOWN_FIELDS}, line=line)


def parse_lines(lines: list[str], name: str = "<dataset>") -> tuple[list[EvalItem], list[str], list[str]]:
    """Items, malformed-line problems and duplicate-id problems (``line N: ...``)."""
    items, problems, duplicates, seen = [], [], [], {}
    for number, raw in enumerate(lines, start=1):
        text = raw.strip()
        if not text or text.startswith("//"):
            continue
        try:
            item = parse_item(json.loads(text), number)
        except json.JSONDecodeError as exc:
            problems.append(f"line {number}: invalid JSON ({exc.msg}, column {exc.colno})")
            continue
        except ValueError as exc:
            problems.append(f"line {number}: {exc}")
            continue
        if item.id in seen:
            duplicates.append(f"line {number}: duplicate id {item.id!r} (first on line {seen[item.id]})")
            continue
        seen[item.id] = number
        items.append(item)
    return items, problems, duplicates


def load_dataset(path: str | Path, skip_invalid: bool = False) -> tuple[list[EvalItem], list[str]]:
    """Items of the file and the problems found (``line N: ...``).

    Malformed lines abort with ``DatasetError`` listing every one of them, unless ``skip_invalid``
    (then they are returned as problems and the valid items are kept); duplicate ids always abort.
    """
    path = Path(path)
    try:
        content = path.read_text(encoding="utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise DatasetError(f"{path}: cannot read the dataset ({exc})") from exc
    items, problems, duplicates = parse_lines(content.splitlines(), str(path))
    if duplicates:
        raise DatasetError(f"{path}: {len(duplicates)} duplicate id(s):\n" + "\n".join(duplicates),
                           duplicates + problems)
    if problems and not skip_invalid:
        raise DatasetError(f"{path}: {len(problems)} malformed line(s) (use --skip-invalid to run the "
                           "valid ones):\n" + "\n".join(problems), problems)
    if not items:
        raise DatasetError(f"{path}: no valid item" + ("" if not problems else ":\n" + "\n".join(problems)),
                           problems)
    return items, problems
