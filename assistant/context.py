"""What the pieces of one pipeline share: the settings, the published index, the embedder, and
what is costly to make — the calibration file, the evidence scorer that reads it, the language
models — each made once, when a piece first asks for it. Engines, selectors and the reranker are
built from it by their factories (``engines``, ``selectors``), so none of them builds another's.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING, Any

from .config import Settings
from .embeddings import Embedder

if TYPE_CHECKING:  # the stores' types, for annotations only
    from .calibration import Calibration
    from .evidence import EvidenceScorer
    from .stores import Index


@dataclass(eq=False)
class PipelineContext:
    settings: Settings
    index: "Index"
    embedder: Embedder
    # Language models by configuration, shared with the variants of one assistant (loaded once).
    backends: dict[tuple, Any] = field(default_factory=dict)

    @cached_property
    def calibration(self) -> "Calibration":
        """The calibration file in use (``settings.calibration``, else the shipped one)."""
        from .calibration import Calibration

        return Calibration.load(self.settings.calibration or None)

    @cached_property
    def scorer(self) -> "EvidenceScorer":
        """The fitted evidence scorer over this index (the reranker's and the selectors' features)."""
        from .evidence import EvidenceScorer

        return EvidenceScorer(self.index, self.embedder, self.calibration)

    def calibration_if_loaded(self) -> "Calibration | None":
        """The calibration, when some piece of this pipeline read it (for eval configs)."""
        return self.__dict__.get("calibration")
