"""Jobs and the one table that says how a job's state may change."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from enum import Enum
from typing import Any

from drivers import PrintOptions
from ippwire.enums import JobState


class JobEvent(Enum):
    CLOSE = "close"  # the last document arrived (or Close-Job)
    HOLD = "hold"
    RELEASE = "release"
    START = "start"  # the worker picked the job
    STOP = "stop"  # the printer stopped while the job was processing
    RESUME = "resume"  # the printer came back
    REQUEUE = "requeue"  # a retryable failure, or a restart after a crash
    COMPLETE = "complete"
    ABORT = "abort"
    CANCEL = "cancel"


_P, _H, _R, _S = (JobState.PENDING, JobState.PENDING_HELD, JobState.PROCESSING,
                  JobState.PROCESSING_STOPPED)
TRANSITIONS: dict[tuple[JobState, JobEvent], JobState] = {
    (_H, JobEvent.CLOSE): _P,
    (_P, JobEvent.HOLD): _H,
    (_H, JobEvent.HOLD): _H,
    (_H, JobEvent.RELEASE): _P,
    (_P, JobEvent.START): _R,
    (_R, JobEvent.STOP): _S,
    (_S, JobEvent.RESUME): _R,
    (_R, JobEvent.REQUEUE): _P,
    (_S, JobEvent.REQUEUE): _P,
    (_R, JobEvent.COMPLETE): JobState.COMPLETED,
    (_S, JobEvent.COMPLETE): JobState.COMPLETED,
    **{(s, JobEvent.ABORT): JobState.ABORTED for s in (_P, _H, _R, _S)},
    **{(s, JobEvent.CANCEL): JobState.CANCELED for s in (_P, _H, _R, _S)},
}

# The job-state-reasons a state always shows, beside any reason the event adds.
STATE_REASONS: dict[JobState, str] = {
    JobState.PENDING: "job-queued",
    JobState.PROCESSING: "job-printing",
    JobState.PROCESSING_STOPPED: "printer-stopped",
}


def options_from_template(template: dict[str, Any], *, name: str = "untitled",
                          user: str = "anonymous") -> PrintOptions:
    """The drivers' view of a job's accepted job-template values."""
    media_col = template.get("media-col") or {}
    return PrintOptions(
        copies=int(template.get("copies", 1)),
        sides=str(template.get("sides", "one-sided")),
        media=str(media_col.get("media-size-name") or template.get("media", "")),
        media_source=str(media_col.get("media-source", "")),
        orientation=template.get("orientation-requested"),
        color_mode=str(template.get("print-color-mode", "auto")),
        print_quality=int(template.get("print-quality", 4)),
        resolution=int(template.get("printer-resolution", 0)),
        page_ranges=tuple((int(lo), int(hi)) for lo, hi in template.get("page-ranges", ())),
        print_scaling=str(template.get("print-scaling", "auto")),
        job_name=name,
        user=user,
        # Collated unless asked otherwise: the default multiple-document-handling we advertise.
        collate=template.get("multiple-document-handling")
        != "separate-documents-uncollated-copies",
    )


def print_options(job: Job) -> PrintOptions:
    return options_from_template(job.template, name=job.name, user=job.user)


class InvalidTransition(Exception):
    """A job asked to make a change its state does not allow (callers map it to not-possible)."""


@dataclass
class Job:
    id: int
    printer: str
    uuid: str
    name: str
    user: str
    state: JobState = JobState.PENDING_HELD
    # `user` was proven by a password (gateway.authn), not only named in the request: then
    # only that user logged in, or an administrator, may change or see the job whole.
    user_authenticated: bool = False
    origin_host: str = ""  # the client's address (job-originating-host-name; private)
    reasons: list[str] = field(default_factory=lambda: ["job-incoming"])
    message: str = ""
    document_format: str = "application/octet-stream"
    format_detected: str = ""
    document_name: str = ""
    compression: str = "none"
    has_document: bool = False
    document_bytes: int = 0
    template: dict[str, Any] = field(default_factory=dict)  # job-template values, JSON-able
    fidelity: bool = False  # ipp-attribute-fidelity at creation: refuse what cannot be honoured
    hold_until: str = "no-hold"
    created: float = field(default_factory=time.time)
    processing_at: float | None = None
    completed_at: float | None = None
    impressions_completed: int = 0
    sheets_completed: int = 0
    bytes_sent: int = 0  # bytes the device took in the last (or current) attempt
    attempts: int = 0

    def apply(self, event: JobEvent, *reasons: str, message: str | None = None) -> None:
        try:
            new_state = TRANSITIONS[(self.state, event)]
        except KeyError:
            raise InvalidTransition(
                f"job {self.id} is {self.state.name.lower()}: cannot {event.value}"
            ) from None
        self.state = new_state
        base = STATE_REASONS.get(new_state)
        self.reasons = list(dict.fromkeys([*reasons, *([base] if base else [])])) or ["none"]
        if message is not None:
            self.message = message
        now = time.time()
        if new_state is JobState.PROCESSING and self.processing_at is None:
            self.processing_at = now
        if new_state.is_terminal:
            self.completed_at = now

    @property
    def k_octets(self) -> int:
        return (self.document_bytes + 1023) // 1024

    @property
    def k_octets_processed(self) -> int:
        """job-k-octets-processed (RFC 8011 5.3.18.1): K octets sent to the device, rounded up."""
        return (self.bytes_sent + 1023) // 1024

    def to_record(self) -> dict[str, Any]:
        record = asdict(self)
        record["state"] = int(self.state)
        return record

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> Job:
        record = dict(record)
        record["state"] = JobState(record["state"])
        known = set(cls.__dataclass_fields__)
        return cls(**{k: v for k, v in record.items() if k in known})
