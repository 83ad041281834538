"""Where indexes are kept and read: the ``Store`` that serves everything answering reads, and the
locations an index is published to and loaded from, chosen by ``Settings.vector_store``.

- ``base``: the contracts (``Store``, ``IndexLocation``, ``SearchBackend``), the shared types
  (``Index``, the loaded snapshot every location gives; ``Embedded``, what a build publishes) and
  the one registry of locations (``locations``).
- ``files``: ``"faiss"``, the embedded default (FAISS + BM25 files in ``index_dir``).
- ``postgres``: ``"postgres"``, PostgreSQL + pgvector shared by several processes.
- ``memory``: ``"memory"``, this process's memory (tests, tiny corpora).
- ``manifest``: what an index records about its build, and whether it is still fresh.

A new location is one module with one ``@locations.register("name")`` on its class (or an
``assistant.stores`` entry point). Building and updating an index is ``assistant.index``'s;
nothing here imports it.
"""

from __future__ import annotations

from ..config import Settings
from ..errors import AssistantError
from .base import Embedded, Index, IndexLocation, SearchBackend, Store, locations


def location_for(settings: Settings) -> IndexLocation:
    """The location ``settings.vector_store`` names, where ``settings`` say (folder, database, ...).
    ``AssistantError`` naming the known ones for an unknown name."""
    try:
        location = locations.get(settings.vector_store)
    except ValueError as exc:
        raise AssistantError(str(exc)) from None
    return location.from_settings(settings)


__all__ = ["Embedded", "Index", "IndexLocation", "SearchBackend", "Store", "location_for", "locations"]
