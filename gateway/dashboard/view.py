"""What the dashboard shows, as JSON-able dicts: printers, jobs, the server, and the bus
events that change them. Pure: no I/O, no trio.

Jobs follow job privacy (gateway.privacy): a job's name, owner and origin are left out for a
viewer who may not see them (anyone but a logged-in administrator or the job's owner), as
Get-Jobs leaves them out. A device URI is shown without its password.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from gateway.core.events import (
    Event,
    JobCompleted,
    JobCreated,
    JobProgress,
    JobSnapshot,
    JobStateChanged,
    PrinterConfigChanged,
    PrinterSnapshot,
    PrinterStateChanged,
)
from gateway.privacy import Viewer
from gateway.server.attributes import supply_text
from ippwire.enums import JobState, PrinterState

Json = dict[str, Any]

JOB_STATE_WORDS = {
    JobState.PENDING: "queued", JobState.PENDING_HELD: "held",
    JobState.PROCESSING: "printing", JobState.PROCESSING_STOPPED: "stopped",
    JobState.CANCELED: "canceled", JobState.ABORTED: "failed",
    JobState.COMPLETED: "completed",
}
PRINTER_STATE_WORDS = {PrinterState.IDLE: "idle", PrinterState.PROCESSING: "printing",
                       PrinterState.STOPPED: "stopped"}

# job-state-reasons a person can act on, in words (the rest are shown as the keyword).
REASON_WORDS = {
    "document-format-error": "the document could not be read or converted",
    "document-unprintable-error": "the document cannot be printed on this printer",
    "job-canceled-by-user": "canceled by its owner",
    "job-canceled-by-operator": "canceled by an administrator",
    "job-canceled-at-device": "canceled at the printer",
    "aborted-by-system": "stopped by the gateway",
    "job-hold-until-specified": "held until released",
    "printer-stopped": "waiting for the printer",
    "resources-are-not-ready": "waiting for the printer to be ready",
    "job-data-insufficient": "the document arrived incomplete",
    "job-incoming": "still arriving",
}


def redact_uri(uri: str) -> str:
    """`uri` without the password of its user info (lpd://user:secret@host/q ->
    lpd://user:***@host/q); anything unparsable is shown as it is up to its scheme."""
    try:
        parts = urlsplit(uri)
    except ValueError:
        return uri.partition(":")[0] + ":..."
    if parts.password is None:
        return uri
    host = parts.netloc.rpartition("@")[2]
    user = parts.username or ""
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def job_error(job: JobSnapshot) -> str:
    """Why a job did not print, in words (empty for one that did or still may)."""
    if job.state not in (JobState.ABORTED, JobState.CANCELED):
        return ""
    words = [REASON_WORDS[r] for r in job.reasons if r in REASON_WORDS]
    message = job.message.strip()
    if message and message not in ("Canceled.",):
        words.append(message)
    return "; ".join(dict.fromkeys(words)) or job.state.name.lower()


def job_view(job: JobSnapshot, viewer: Viewer) -> Json:
    shown: Json = {
        "id": job.id, "printer": job.printer,
        "state": JOB_STATE_WORDS.get(job.state, job.state.name.lower()),
        "reasons": [r for r in job.reasons if r != "none"],
        "format": job.document_format,
        "pages": job.impressions_completed, "bytes": job.bytes_sent,
        "attempts": job.attempts, "error": job_error(job),
        "terminal": job.state.is_terminal, "size": job.document_bytes,
    }
    if viewer.sees_private_values(job.user, job.user_authenticated):
        shown.update(name=job.name, owner=job.user, origin=job.origin_host)
    return shown


def printer_view(printer: PrinterSnapshot, *, device_uri: str, driver: str,
                 make_and_model: str, location: str, info: str, path: str) -> Json:
    """The printer's card: its state part (what a live update changes) and its description."""
    return {**_printer_state(printer), "uuid": printer.uuid,
            "device": redact_uri(device_uri), "driver": driver, "model": make_and_model,
            "location": location, "info": info, "path": path}


@dataclass(frozen=True)
class ServerInfo:
    """The gateway itself: its certificate and its DNS-SD names, for the server panel."""

    version: str
    certificate_sha256: str = ""
    certificate_expires: str = ""  # RFC 3339, empty without TLS
    dnssd_names: Mapping[str, str] | None = None  # printer -> its advertised name
    auth_enabled: bool = False

    def as_json(self) -> Json:
        return {"version": self.version, "certificate_sha256": self.certificate_sha256,
                "certificate_expires": self.certificate_expires,
                "dnssd_names": dict(self.dnssd_names or {}),
                "auth_enabled": self.auth_enabled}


def event_message(event: Event, viewer: Viewer) -> Json | None:
    """The live update one bus event makes, or None for an event the page does not show.
    Printer events carry only the state part: the page keeps the rest from its snapshot."""
    if isinstance(event, JobCreated | JobStateChanged | JobProgress | JobCompleted):
        return {"type": "job", "kind": event.kind, "revision": event.revision,
                "job": job_view(event.job, viewer)}
    if isinstance(event, PrinterStateChanged):
        return {"type": "printer-state", "revision": event.revision,
                "printer": _printer_state(event.printer)}
    if isinstance(event, PrinterConfigChanged):
        # The printer's description changed (or it went): the page asks for a snapshot.
        return {"type": "resync", "revision": event.revision, "reason": "printer-config"}
    return None


def _printer_state(printer: PrinterSnapshot) -> Json:
    return {"name": printer.name,
            "state": PRINTER_STATE_WORDS.get(printer.state, printer.state.name.lower()),
            "reasons": [r for r in printer.reasons if r != "none"],
            "message": printer.message, "paused": printer.paused,
            "queued": printer.queued_jobs, "device_status": printer.device_status,
            "supplies": [supply_text(supply) for supply in printer.supplies]}
