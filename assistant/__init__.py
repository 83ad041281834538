"""Question answering with citations over the Interpeace / IMRAP Mali programme documents."""

from .api import Assistant
from .errors import AssistantError
from .types import Answer, Citation, Passage

__all__ = ["Assistant", "Answer", "Citation", "Passage", "AssistantError"]
