"""Sentence selectors: which sentences of the retrieved passages answer (see ``base``)."""

from .base import Selection, SentenceSelector, Unit, create_selector, selectors

__all__ = ["Selection", "SentenceSelector", "Unit", "create_selector", "selectors"]
