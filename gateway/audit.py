"""The audit log: one JSON line for each job event, admin action and failed authentication.

Each line is a JSON object with the same keys first: `time` (RFC 3339, UTC, milliseconds),
`kind` ("job", "operation", "auth", "printer", or "audit" for the log's own notes), `user`,
`address`, `printer`, `job`, `operation` and `outcome` (null where a line has no such thing),
then fields of its kind. It goes to `audit.log` in the spool (the gateway's state directory),
rotated by size (`audit.log.1` is the newest old one), mode 0640.

Where the lines come from:
- Job events: `following(bus, nursery)` subscribes to the System's bus (created, state changed,
  completed, and printer configuration changes; never progress, which is far too chatty) and
  writes them from its own task. Publishing never waits for it: when it falls behind, the bus
  drops the oldest events and counts them, and the log says how many it missed.
- Admin actions: the IPP dispatcher calls `ipp_request` once per answered request; only the
  operations in ADMIN_OPERATIONS are written, with who asked, from where and the status.
- Failed authentication: `auth_failed`.
The module-level `ipp_request` and `auth_failed` write to the AuditLog that is `install`ed
(the running gateway's, while it follows its System), and do nothing when none is: the
dispatcher need not be handed one.

The writes are plain `os.write` calls on the calling (Trio) thread, without fsync: a line of a
few hundred bytes appended to a local file lands in the page cache, far cheaper than pushing
every line through a worker thread. A failing disk never stops printing: the error is logged
once, the lines are counted as lost, and the file is opened again on the next line. The file
is our own small `RotatingFile` rather than logging's RotatingFileHandler: it must be 0640
whatever the umask, be created on the first line (after the hand-over from root, so the
gateway's account owns it), and count a failed write instead of printing a traceback.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from types import TracebackType
from typing import TypeVar

import trio

from gateway.config import Config
from gateway.core.bus import EventBus, Subscription
from gateway.core.events import (
    Event,
    JobCompleted,
    JobCreated,
    JobStateChanged,
    PrinterConfigChanged,
)
from gateway.core.system import System
from gateway.ratelimit import client_key
from gateway.server import values
from gateway.server.values import BadValue
from ippwire.enums import JobState, Operation, Status
from ippwire.model import Attribute, Message

log = logging.getLogger("gateway.audit")
V = TypeVar("V")

AUDIT_FILE = "audit.log"
AUDIT_FILE_BYTES = 10 << 20  # the file rotates at this size...
AUDIT_FILE_BACKUPS = 5  # ...keeping audit.log.1 to audit.log.5
AUDIT_FILE_MODE = 0o640
AUDIT_QUEUE = 1024  # bus events the log may fall behind by before it misses some
MAX_FIELD = 256  # characters kept of a string a client chose (a user name, a reason)

# What the bus hands the log: JobProgress is left out on purpose.
AUDITED_KINDS = (JobCreated.kind, JobStateChanged.kind, JobCompleted.kind,
                 PrinterConfigChanged.kind)

# Operations that act on a printer, on jobs, or on the configuration: what an administrator or
# a job's owner does, as opposed to printing and reading.
ADMIN_OPERATIONS = frozenset({
    Operation.PAUSE_PRINTER, Operation.RESUME_PRINTER, Operation.IDENTIFY_PRINTER,
    Operation.ENABLE_PRINTER, Operation.DISABLE_PRINTER, Operation.SET_PRINTER_ATTRIBUTES,
    Operation.CANCEL_JOB, Operation.CANCEL_CURRENT_JOB, Operation.CANCEL_DOCUMENT,
    Operation.CANCEL_JOBS, Operation.CANCEL_MY_JOBS, Operation.PURGE_JOBS,
    Operation.HOLD_JOB, Operation.RELEASE_JOB, Operation.RESTART_JOB,
    Operation.RESUBMIT_JOB, Operation.SET_JOB_ATTRIBUTES,
})

_SUCCESS_KEYWORDS = {
    Status.OK: "successful-ok",
    Status.OK_IGNORED_OR_SUBSTITUTED: "successful-ok-ignored-or-substituted-attributes",
    Status.OK_CONFLICTING: "successful-ok-conflicting-attributes",
}


def rfc3339(seconds: float) -> str:
    """`seconds` since the epoch as RFC 3339 UTC with milliseconds: 2026-12-03T14:52:46.123Z."""
    moment = datetime.fromtimestamp(seconds, UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def status_keyword(status: int) -> str:
    """An IPP status code as its RFC 8011 keyword (client-error-not-found, ...)."""
    try:
        known = Status(status)
    except ValueError:
        return f"0x{status & 0xFFFF:04x}"
    return _SUCCESS_KEYWORDS.get(known, known.name.lower().replace("_", "-"))


def operation_name(code: int) -> str:
    """An operation code as IPP names it (Pause-Printer), as the dispatcher's log lines do."""
    try:
        return Operation(code).name.replace("_", "-").title()
    except ValueError:
        return f"operation 0x{code & 0xFFFF:04x}"


def state_keyword(state: JobState) -> str:
    return state.name.lower().replace("_", "-")


def line(kind: str, at: float, *, user: str | None = None, address: str | None = None,
         printer: str | None = None, job: int | None = None, operation: str | None = None,
         outcome: str | None = None, fields: Mapping[str, object] | None = None) -> str:
    """One audit line (with its newline): the common keys in a fixed order, then `fields`."""
    record: dict[str, object] = {
        "time": rfc3339(at), "kind": kind, "user": _clip(user), "address": _clip(address),
        "printer": printer, "job": job, "operation": operation, "outcome": outcome}
    record.update(fields or {})
    # ensure_ascii: a client's strings cannot put control characters or odd encodings into
    # the file; json escapes them all.
    return json.dumps(record, separators=(",", ":"), ensure_ascii=True) + "\n"


def event_line(event: Event) -> str | None:
    """The audit line of a bus event, None for an event the log does not keep."""
    if isinstance(event, JobCreated | JobStateChanged | JobCompleted):
        job = event.job
        fields: dict[str, object] = {"reasons": list(job.reasons)}
        if not isinstance(event, JobCreated):
            fields["previous"] = state_keyword(event.previous)
        if job.message:
            fields["message"] = _clip(job.message)
        if isinstance(event, JobCompleted):
            fields.update(impressions=job.impressions_completed, sheets=job.sheets_completed,
                          bytes=job.bytes_sent, attempts=job.attempts)
        return line("job", event.time, user=job.user, address=job.origin_host or None,
                    printer=job.printer, job=job.id,
                    operation=event.kind, outcome=state_keyword(job.state), fields=fields)
    if isinstance(event, PrinterConfigChanged):
        printer = event.printer
        return line("printer", event.time, printer=printer.name, operation=event.kind,
                    outcome="removed" if event.removed else "configured",
                    fields={"state": printer.state.name.lower(), "paused": printer.paused})
    return None


def request_target(system: System, request: Message) -> tuple[str | None, str | None,
                                                               int | None]:
    """Who a request says it is from (requesting-user-name), and the printer and job it
    names, read leniently: a value the dispatcher refused is None here, never an error."""
    group = request.operation_attributes
    user = _read(group.get("requesting-user-name"), values.single_name)
    printer_name = job_id = None
    job_uri = _read(group.get("job-uri"), values.single_uri)
    printer_uri = _read(group.get("printer-uri"), values.single_uri)
    path = printer_uri.path if printer_uri is not None else None
    if job_uri is not None:
        job_path, _, tail = job_uri.path.rstrip("/").rpartition("/")
        path = path or job_path
        with suppress(BadValue):
            job_id = values.ascii_number(tail)
    if job_id is None:
        job_id = _read(group.get("job-id"), values.single_integer)
    if path is not None:
        printer = system.printer_for_path(path)
        printer_name = printer.name if printer is not None else None
    return user, printer_name, job_id


class RotatingFile:
    """Lines appended to one file that rotates by size: `path` -> `path.1` -> ... ->
    `path.<backups>` (the oldest falls off). Opened on the first line, so that it is created
    by the account the gateway runs as, not by root before the hand-over."""

    def __init__(self, path: Path, max_bytes: int = AUDIT_FILE_BYTES,
                 backups: int = AUDIT_FILE_BACKUPS) -> None:
        self.path = path
        self.max_bytes = max_bytes
        self.backups = backups
        self._fd: int | None = None
        self._size = 0

    def write(self, text: str) -> None:
        """Append `text` (raises OSError; the file is then reopened on the next call)."""
        data = text.encode("ascii")
        try:
            if self._fd is None:
                self._open()
            if self._size and self._size + len(data) > self.max_bytes:
                self._rotate()
            assert self._fd is not None
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
                self._size += written
        except OSError:
            self.close()
            raise

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC,
                     AUDIT_FILE_MODE)
        try:
            os.fchmod(fd, AUDIT_FILE_MODE)  # whatever the umask, or a file made looser
            self._size = os.fstat(fd).st_size
        except OSError:
            os.close(fd)
            raise
        self._fd = fd

    def _rotate(self) -> None:
        self.close()
        if self.backups > 0:
            for index in range(self.backups - 1, 0, -1):
                older = self._backup(index)
                if older.exists():
                    os.replace(older, self._backup(index + 1))
            os.replace(self.path, self._backup(1))
        else:
            self.path.unlink(missing_ok=True)
        self._open()

    def _backup(self, index: int) -> Path:
        return self.path.with_name(f"{self.path.name}.{index}")

    def close(self) -> None:
        if self._fd is not None:
            fd, self._fd = self._fd, None
            os.close(fd)


@dataclass
class _Feed:
    subscription: Subscription
    noted: int = 0  # of its missed events, how many a line already told of


class AuditLog:
    def __init__(self, path: Path, *, max_bytes: int = AUDIT_FILE_BYTES,
                 backups: int = AUDIT_FILE_BACKUPS, queue: int = AUDIT_QUEUE,
                 clock: Callable[[], float] = time.time) -> None:
        self.file = RotatingFile(path, max_bytes, backups)
        self.queue = queue
        self._clock = clock
        self.written = 0  # lines written
        self.lost = 0  # lines the file refused (disk full, ...)
        self.missed = 0  # bus events dropped because the log fell behind
        self._failing = False

    @classmethod
    def for_config(cls, config: Config) -> AuditLog:
        """The gateway's audit log: `audit.log` in the spool, which is its state directory."""
        return cls(config.spool / AUDIT_FILE)

    @property
    def path(self) -> Path:
        return self.file.path

    # -- what is recorded -----------------------------------------------------------------

    def operation(self, operation: str, user: str | None, address: str | None,
                  printer: str | None, job: int | None, status: int,
                  message: str | None = None) -> None:
        """An operation someone asked for, and how it was answered (the IPP status)."""
        fields: dict[str, object] = {} if not message else {"message": _clip(message)}
        self.write(line("operation", self._clock(), user=user, address=address,
                        printer=printer, job=job, operation=operation,
                        outcome=status_keyword(status), fields=fields))

    def ipp_request(self, system: System, request: Message, client: str, status: int,
                    message: str | None = None, *, user: str | None = None) -> None:
        """An answered IPP request, written when its operation is an admin action. `client`
        is the peer as "ip:port" (the port is dropped); `user` overrides the request's
        requesting-user-name (an authenticated user)."""
        if request.code not in ADMIN_OPERATIONS:
            return
        named, printer, job = request_target(system, request)
        self.operation(operation_name(request.code), user or named, client_key(client) or None,
                       printer, job, status, message)

    def auth_failed(self, user: str | None, address: str | None, reason: str,
                    printer: str | None = None) -> None:
        """A failed authentication: the user name tried (None when there was none), the
        client's address and why it failed ("bad-password", "unknown-user", ...)."""
        self.write(line("auth", self._clock(), user=user, address=address, printer=printer,
                        operation="authenticate", outcome="failed",
                        fields={"reason": _clip(reason)}))

    def event(self, event: Event) -> None:
        text = event_line(event)
        if text is not None:
            self.write(text)

    def write(self, text: str) -> None:
        """Append one line; a failure is logged when it starts and when it ends, and never
        raised: the audit log must not stop printing."""
        try:
            self.file.write(text)
        except OSError as error:
            self.lost += 1
            if not self._failing:
                self._failing = True
                log.error("audit log %s: cannot write: %s; audit lines are lost until it can",
                          self.path, error.strerror or error)
            return
        self.written += 1
        if self._failing:
            self._failing = False
            log.warning("audit log %s: writable again; %d line(s) were lost", self.path,
                        self.lost)

    # -- following the bus ----------------------------------------------------------------

    @contextmanager
    def following(self, bus: EventBus, nursery: trio.Nursery) -> Iterator[None]:
        """Write `bus`'s job events, from a task in `nursery`, while the block runs (a
        System's `run`), and be the installed log meanwhile (the one the dispatcher's
        `ipp_request` and `auth_failed` reach). What is still queued when the block ends is
        written before leaving it, so the last events of a stopping System are kept; the
        file is closed then (a reload's next System opens it again). A plain `with`, not a
        nursery of its own: exceptions from the block pass through unchanged."""
        feed = _Feed(bus.subscribe(maxlen=self.queue, kinds=AUDITED_KINDS))
        nursery.start_soon(self._follow, feed)
        self.install()
        try:
            yield
        finally:
            for event in feed.subscription.drain():
                self._take(event, feed)
            self._note_missed(feed)
            feed.subscription.close()  # ends the task: its queue is closed and empty
            self.close()

    async def _follow(self, feed: _Feed) -> None:
        async for event in feed.subscription:
            self._take(event, feed)

    def _take(self, event: Event, feed: _Feed) -> None:
        self._note_missed(feed)  # the dropped ones came before anything still queued
        self.event(event)

    def _note_missed(self, feed: _Feed) -> None:
        missed = feed.subscription.missed - feed.noted
        if missed > 0:
            feed.noted += missed
            self.missed += missed
            log.warning("audit log: fell behind the bus and missed %d event(s)", missed)
            self.write(line("audit", self._clock(), operation="events-missed",
                            outcome="missed", fields={"missed": missed}))

    # -- lifetime -------------------------------------------------------------------------

    def install(self) -> AuditLog:
        """Make this the log the module-level functions write to (returns it)."""
        global _installed
        _installed = self
        return self

    def close(self) -> None:
        global _installed
        if _installed is self:
            _installed = None
        self.file.close()

    def __enter__(self) -> AuditLog:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.close()


_installed: AuditLog | None = None


def installed() -> AuditLog | None:
    return _installed


def ipp_request(system: System, request: Message, client: str, status: int,
                message: str | None = None, *, user: str | None = None) -> None:
    """`AuditLog.ipp_request` on the installed log; nothing when there is none."""
    if _installed is not None:
        _installed.ipp_request(system, request, client, status, message, user=user)


def auth_failed(user: str | None, address: str | None, reason: str,
                printer: str | None = None) -> None:
    """`AuditLog.auth_failed` on the installed log; nothing when there is none."""
    if _installed is not None:
        _installed.auth_failed(user, address, reason, printer)


def _read(attr: Attribute | None, read: Callable[[Attribute], V]) -> V | None:
    if attr is None:
        return None
    try:
        return read(attr)
    except BadValue:
        return None


def _clip(text: str | None) -> str | None:
    return text if text is None or len(text) <= MAX_FIELD else text[:MAX_FIELD] + "..."
