"""The one exception type the library raises for problems a user can fix."""


class AssistantError(Exception):
    """A clear, one-sentence problem (a path and what to do), shown without a traceback."""
