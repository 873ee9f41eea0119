"""Errors a use case raises; views show their message to the user."""


class PortalError(Exception):
    """A request the rules refuse. The message is user-facing (already translated)."""

    field: str | None = None

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.field = field


class NotAllowed(PortalError):
    """The actor may see the thing but not do this to it (answers 403)."""


class Conflict(PortalError):
    """The request clashes with the current state (answers 409)."""
