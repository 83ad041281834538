"""Answer engines: from the retrieved passages to an ``Answer`` with citations (see ``base``)."""

from .base import AnswerEngine, create_engine, engines

__all__ = ["AnswerEngine", "create_engine", "engines"]
