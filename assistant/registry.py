"""Registries: a name -> factory map for each kind of pluggable piece (answer engines, sentence
selectors, stores, CLI commands), in the shape of simonw/llm's plugins and txtai's factories.

The built-in pieces register themselves in their own modules, which a registry imports the first
time it is asked; add-ons outside the package register through an entry point of the group
``assistant.<kind>`` (its object is called with the registry). A new piece is one module and one
``@registry.register("name")``; nothing else names it.
"""

from __future__ import annotations

import importlib
import logging
from importlib import metadata
from typing import Callable, Generic, Iterator, TypeVar

log = logging.getLogger("assistant.registry")
Factory = TypeVar("Factory", bound=Callable)


class Registry(Generic[Factory]):
    """Factories by name for one kind of piece (``label`` names the kind in messages, in French)."""

    def __init__(self, kind: str, label: str, builtins: tuple[str, ...] = ()) -> None:
        self.kind, self.label, self._builtins = kind, label, builtins
        self._factories: dict[str, Factory] = {}
        self._loaded = False

    def register(self, name: str) -> Callable[[Factory], Factory]:
        """Decorator: ``@engines.register("extractive")`` over a factory."""
        def add(factory: Factory) -> Factory:
            self._factories[name] = factory
            return factory
        return add

    def unregister(self, name: str) -> None:
        self._factories.pop(name, None)

    def get(self, name: str) -> Factory:
        """The factory registered as ``name``; ``ValueError`` (in French) naming the known ones."""
        self._load()
        try:
            return self._factories[name]
        except KeyError:
            raise ValueError(f"{self.label} inconnu « {name} » : choisissez parmi {', '.join(self.names())}.") from None

    def names(self) -> list[str]:
        self._load()
        return list(self._factories)

    def __contains__(self, name: str) -> bool:
        self._load()
        return name in self._factories

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def _load(self) -> None:
        if self._loaded:
            return
        self._loaded = True
        for module in self._builtins:
            importlib.import_module(module)
        for entry in metadata.entry_points(group=f"assistant.{self.kind}"):
            try:
                entry.load()(self)
            except Exception as exc:  # noqa: BLE001 - a broken add-on must not stop the assistant
                log.warning("Extension %s (%s) non chargée : %s", entry.name, self.kind, exc)
