"""Protocol errors that become IPP status codes: one hierarchy, raised by the operations."""

from __future__ import annotations

from ippwire.enums import Status
from ippwire.model import Attribute


class IppError(Exception):
    """A valid request we refuse; becomes an IPP status + status-message (+ unsupported group)."""

    def __init__(self, status: Status, message: str,
                 unsupported: list[Attribute] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.unsupported = unsupported or []


class BadRequest(IppError):
    def __init__(self, message: str) -> None:
        super().__init__(Status.CLIENT_ERROR_BAD_REQUEST, message)


class NotFound(IppError):
    def __init__(self, message: str) -> None:
        super().__init__(Status.CLIENT_ERROR_NOT_FOUND, message)


class NotPossible(IppError):
    def __init__(self, message: str) -> None:
        super().__init__(Status.CLIENT_ERROR_NOT_POSSIBLE, message)
