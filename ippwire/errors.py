"""The one error the IPP codec raises for bytes that are not a well-formed IPP message."""

from __future__ import annotations

from ippwire.enums import Status


class IppProtocolError(Exception):
    """Malformed IPP bytes; `status` hints which IPP status a server should answer with.

    The message is meant for humans (a log line or a status-message): it names the attribute
    and the byte offset where that helps to find the fault.
    """

    def __init__(self, message: str, status: Status = Status.CLIENT_ERROR_BAD_REQUEST) -> None:
        super().__init__(message)
        self.message = message
        self.status = status

    def __repr__(self) -> str:
        return f"IppProtocolError({self.message!r}, {self.status.name})"
