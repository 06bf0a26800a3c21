"""Failures on the paper side, each carrying what the printer worker should do next."""

from __future__ import annotations

import os
from enum import Enum


class Outcome(Enum):
    RETRY = "retry"  # keep the job, retry later with backoff; printer shows the device offline
    RETRY_CURRENT = "retry-current"  # retry this job now (a transient hiccup)
    HOLD = "hold"  # hold the job for the operator
    STOP_PRINTER = "stop-printer"  # stop the printer; the job waits
    CANCEL = "cancel"  # abort the job: it can never print


class DriverError(Exception):
    """A device or conversion failure; `outcome` says what happens to the job."""

    outcome: Outcome = Outcome.RETRY

    def __init__(self, message: str, outcome: Outcome | None = None, *, reason: str = "") -> None:
        super().__init__(message)
        self.message = message
        if outcome is not None:
            self.outcome = outcome
        # An IPP printer-state-reasons keyword to show while this failure lasts, if any.
        self.reason = reason


class TransportError(DriverError):
    outcome = Outcome.RETRY


class FormatRefused(TransportError):
    """The device refused the format of the bytes before taking any (an IPP device's
    client-error-document-format-not-supported): the printer worker converts the job once
    more, for a format in `accepted` (what the device lists), and sends it again."""

    outcome = Outcome.CANCEL

    def __init__(self, message: str, accepted: tuple[str, ...] = ()) -> None:
        super().__init__(message, reason="document-format-error")
        self.accepted = accepted


class ConversionError(DriverError):
    """The document cannot be converted: the job is aborted with document-format-error."""

    outcome = Outcome.CANCEL


class UriError(ValueError):
    """A device URI that cannot be used; the message names the part at fault."""


def os_reason(exc: BaseException) -> str:
    """Why a system call failed, in plain lower-case words ("connection refused"), never the
    repr of an address tuple or an "[Errno 111]" prefix.

    Follows a wrapped cause: trio's BrokenResourceError and its "all attempts to connect ...
    failed" (an ExceptionGroup of the attempts) carry the real error underneath.
    """
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        code = getattr(exc, "errno", None)
        if isinstance(code, int) and code > 0:
            return _lower_first(os.strerror(code))
        strerror = getattr(exc, "strerror", None)
        if isinstance(strerror, str) and strerror:
            return _lower_first(strerror)  # getaddrinfo's EAI_* codes, pyusb's libusb errors
        cause = exc.__cause__ or exc.__context__
        if isinstance(cause, BaseExceptionGroup) and cause.exceptions:
            cause = cause.exceptions[0]
        if cause is None:
            break
        exc = cause
    return _lower_first(str(exc)) or type(exc).__name__


def _lower_first(text: str) -> str:
    # "Connection refused" -> "connection refused"; "USB ..." keeps its capitals.
    if len(text) > 1 and text[0].isupper() and not text[1].isupper():
        return text[0].lower() + text[1:]
    return text
