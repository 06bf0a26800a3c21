"""Failures on the paper side, each carrying what the printer worker should do next."""

from __future__ import annotations

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


class ConversionError(DriverError):
    """The document cannot be converted: the job is aborted with document-format-error."""

    outcome = Outcome.CANCEL


class UriError(ValueError):
    """A device URI that cannot be used; the message names the part at fault."""
