"""Question answering with citations over the Interpeace / IMRAP Mali programme documents."""

from .answering import Answer, Citation
from .api import Assistant
from .errors import AssistantError
from .retrieval import Passage

__all__ = ["Assistant", "Answer", "Citation", "Passage", "AssistantError"]
