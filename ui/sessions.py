"""Gradio sessions made cheap: every call of ``/ask`` over the HTTP API is a new Gradio session, and
Gradio 6 builds, for each new session, the configuration of every component of the page
(``SessionState.__init__``: ``config_for_block`` for each block, ``inspect.signature`` of each
component's constructor), which only the deep-link route ever reads. On this app (about a hundred
components) that was about 6 ms of the serving process's CPU per answer, more than the answer
itself: the load test (issue 26 point 14) found it in a profile of the server under 20 clients.

``lazy_session_configs()`` makes each block's configuration computed when it is first used instead
(Gradio already computes a missing one on its own when an event sets a value); the whole page's,
read by the deep-link route alone (``SessionState.components``), is completed there, the same as
Gradio computed it before. Idempotent; left out, with a warning, when the installed Gradio's
``SessionState`` is not the one it knows.
"""

from __future__ import annotations

import importlib.util
import inspect
import logging
import sys
from typing import Any

log = logging.getLogger("assistant")


class _NoBlocks:
    """What ``SessionState.__init__`` reads of the app, with no block to configure."""

    def __init__(self, blocks: Any) -> None:
        self.default_config = blocks.default_config
        self.blocks: dict = {}


def lazy_session_configs() -> bool:
    """Patch ``gradio.state_holder.SessionState`` (once); True when it is patched."""
    from gradio import state_holder

    cls = state_holder.SessionState
    if getattr(cls, "_lazy_configs", False):
        return True
    try:
        source = inspect.getsource(cls.__init__)
    except (OSError, TypeError):
        source = ""
    if ("self.config_values = {" not in source or "config_for_block(k, [], v)" not in source
            or "config_values" in cls.__dict__):
        log.warning("Gradio : SessionState inattendu, chaque session calcule la configuration de la page.")
        return False
    original = cls.__init__
    original_components = cls.components

    def __init__(self: Any, blocks: Any) -> None:
        original(self, _NoBlocks(blocks))  # every attribute as Gradio sets it, config_values empty
        self._config_pending = blocks

    def complete(self: Any) -> None:
        """Every block's configuration, as __init__ computed it, with the values set since."""
        blocks = self.__dict__.pop("_config_pending", None)
        if blocks is None:
            return
        values = self.config_values
        full = {k: values[k] if k in values else self.blocks_config.config_for_block(k, [], v)
                for k, v in self.blocks_config.blocks.items() if k in blocks.blocks}
        full.update(values)
        values.clear()
        values.update(full)

    def components(self: Any):
        complete(self)
        return original_components.fget(self)

    cls.__init__ = __init__
    cls.components = property(components)
    cls._lazy_configs = True
    return True


def lighter_requests() -> None:
    """Two more per-request costs of Gradio 6 the load test's profile showed, taken away (call it
    before the app is built):

    - its queue recomputed a summary of the last 10,000 events (a pandas DataFrame, percentiles)
      after every event, for the monitoring dashboard this app does not serve: every 1,000 events
      instead (``GRADIO_ANALYTICS_CACHE_FREQUENCY``, set with the other variables by
      ``assistant.config.prepare_environment``);
    - each event imports matplotlib to save and restore its backend; matplotlib is not installed,
      and a failed import is not remembered, so every event searched the whole ``sys.path`` for it:
      when it is not installed, it is marked missing once (``sys.modules``), the same ImportError.
    """
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # type: ignore[assignment]  # import raises ImportError at once
