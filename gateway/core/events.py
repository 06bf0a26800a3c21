"""What the bus carries: typed events about jobs and printers, and the snapshots inside them.

Pure data (no trio): an event is a frozen record of a change that already happened and is
already applied. Snapshots are copies, so a subscriber reading an event later sees the state
as it was at that change, never a live object that has moved on.

Every event carries the store's `revision` after the change (strictly increasing, one per
change) and the wall-clock `time` of the change. A job's events come in the order of its
transitions: `JobCreated`, then one `JobStateChanged` per non-terminal transition (with
`JobProgress` between them while it prints), and one `JobCompleted` for the transition into a
terminal state (completed, canceled or aborted; RFC 3995 counts it as a state change too).
A `JobAttempt` reports how each attempt at printing went (for metrics), just before the state
change that attempt leads to.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, ClassVar

from ippwire.enums import JobState, PrinterState

if TYPE_CHECKING:
    from drivers import Supply


@dataclass(frozen=True, slots=True)
class JobSnapshot:
    id: int
    printer: str
    name: str
    user: str
    state: JobState
    reasons: tuple[str, ...]
    message: str
    document_format: str
    impressions_completed: int
    sheets_completed: int
    bytes_sent: int
    attempts: int
    origin_host: str = ""  # the address of the client that made the job
    user_authenticated: bool = False  # `user` logged in when it made the job
    document_bytes: int = 0  # the document's size as spooled (0 while it arrives)


@dataclass(frozen=True, slots=True)
class PrinterSnapshot:
    """A printer as IPP and the other advertisers see it at one moment."""

    name: str
    uuid: str
    state: PrinterState
    reasons: tuple[str, ...]  # printer-state-reasons, sorted, ("none",) when there are none
    message: str
    state_changed_at: float  # wall-clock time of the last change of state, reasons or message
    config_changed_at: float
    paused: bool
    queued_jobs: int  # jobs not yet terminal (queued-job-count)
    # What the device itself last said, where its transport reports it: the remote LPD
    # queue's state, the PJL status display ("" when it says nothing).
    device_status: str = ""
    supplies: tuple[Supply, ...] = ()  # as the device last reported them (IPP devices)


@dataclass(frozen=True, slots=True)
class JobCreated:
    kind: ClassVar[str] = "job-created"
    revision: int
    time: float
    job: JobSnapshot


@dataclass(frozen=True, slots=True)
class JobStateChanged:
    """A non-terminal transition (or new reasons or message in the same state)."""

    kind: ClassVar[str] = "job-state-changed"
    revision: int
    time: float
    job: JobSnapshot
    previous: JobState


@dataclass(frozen=True, slots=True)
class JobProgress:
    """Pages or bytes sent; consecutive ones for a job may be coalesced into the latest."""

    kind: ClassVar[str] = "job-progress"
    revision: int
    time: float
    job: JobSnapshot


@dataclass(frozen=True, slots=True)
class JobCompleted:
    """The transition into a terminal state: completed, canceled or aborted."""

    kind: ClassVar[str] = "job-completed"
    revision: int
    time: float
    job: JobSnapshot
    previous: JobState


@dataclass(frozen=True, slots=True)
class JobAttempt:
    """One attempt at printing a job ended: the document went through (`path`, `seconds`)
    or it failed (`failure`). A report (for metrics): the job's state moves by its own
    events, published right after this one."""

    kind: ClassVar[str] = "job-attempt"
    revision: int
    time: float
    job: JobSnapshot
    transport: str  # the device URI's scheme: socket, lpd, usb, serial, file
    path: str = ""  # the document's route (the plan's steps); "" when it failed
    seconds: float = 0.0  # from the plan to the last byte handed to the transport
    failure: str = ""  # "" when it went through; else the reason keyword, or "other"
    device: bool = False  # the failure came from the device (TransportError), not conversion


@dataclass(frozen=True, slots=True)
class PrinterStateChanged:
    kind: ClassVar[str] = "printer-state-changed"
    revision: int
    time: float
    printer: PrinterSnapshot


@dataclass(frozen=True, slots=True)
class PrinterConfigChanged:
    """A printer was added, changed or removed (`removed`) by a reload."""

    kind: ClassVar[str] = "printer-config-changed"
    revision: int
    time: float
    printer: PrinterSnapshot
    removed: bool = False


Event = (JobCreated | JobStateChanged | JobProgress | JobCompleted | JobAttempt
         | PrinterStateChanged | PrinterConfigChanged)
JobEventRecord = JobCreated | JobStateChanged | JobProgress | JobCompleted | JobAttempt

EVENT_KINDS: tuple[str, ...] = (
    JobCreated.kind, JobStateChanged.kind, JobProgress.kind, JobCompleted.kind,
    JobAttempt.kind, PrinterStateChanged.kind, PrinterConfigChanged.kind,
)


def job_id_of(event: Event) -> int | None:
    return event.job.id if isinstance(event, JobEventRecord) else None


def printer_of(event: Event) -> str:
    return event.job.printer if isinstance(event, JobEventRecord) else event.printer.name
