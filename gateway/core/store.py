"""The job store: every job, the spool behind them, the revision and the history.

Every change to a job goes through one method here (`create`, `transition`, `update`,
`progress`, `discard`). Each one applies the change in memory, bumps `revision`, publishes a
typed event on the bus, and marks what must reach the disk. The disk writes run in a worker
thread, never on the Trio thread (fsync can take tens of milliseconds on an SD card), and
coalesce: a job that changes five times before the writer runs is written once, and one
directory fsync covers every record of a batch.

Durability where it is promised:
- `flushed()` waits until every change made so far is on disk (or raises the OSError that
  stopped it). The IPP layer awaits it before answering a request that changed something (a
  new job's record and the job-id mark covering its id included: an id is never handed out
  that a crash could forget or hand out again), and the printer worker awaits it after a
  job ends before taking the next, so the kill -9 guarantees hold: an answered change
  survives, a printed job is not printed again.
Other changes reach the disk within one writer round (`WRITE_DELAY` after the first of them;
see `persist_latency`): nobody waits for those, so they may as well share a write.

Progress counters are not persisted on their own (a job that restarts after a crash starts
over); they ride along with the job's next state change.
"""

from __future__ import annotations

import json
import logging
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

import trio

from gateway.core.bus import EventBus
from gateway.core.events import (
    JobAttempt,
    JobCompleted,
    JobCreated,
    JobProgress,
    JobSnapshot,
    JobStateChanged,
    PrinterConfigChanged,
    PrinterSnapshot,
    PrinterStateChanged,
)
from gateway.core.job import InvalidTransition, Job, JobEvent
from gateway.core.spool import Spool, SpoolBatch
from ippwire.enums import JobState

log = logging.getLogger("gateway.store")

JOB_ID_BLOCK = 100  # job-ids reserved on disk at a time (one system.json write per block)
RETRY_WRITE_AFTER = 1.0  # seconds before the writer tries again after a failed write
# Seconds the writer lets changes gather before a round nobody waits for: a job's start and
# its end often share one write. Whoever needs durability awaits `flushed()`, which writes
# at once.
WRITE_DELAY = 0.05

# How the writer runs a blocking write: in a worker thread. Tests on Trio's autojump clock
# pass one that writes inline, since a thread would let virtual time jump while it runs.
BlockingRunner = Callable[[Callable[[SpoolBatch], None], SpoolBatch], Awaitable[None]]


@dataclass
class LoadedSpool:
    """What a spool holds at start, read in one go (off the Trio thread by `load_spool`)."""

    spool: Spool
    system_uuid: uuid.UUID
    job_id_mark: int
    jobs: list[Job]
    paused: set[str]


def load_spool(root: Path) -> LoadedSpool:
    """Read the spool (blocking I/O: run it in a thread)."""
    spool = Spool(root)
    return LoadedSpool(spool, spool.system_uuid(), spool.job_id_mark(), spool.load_all(),
                       spool.paused_printers())


@dataclass(frozen=True)
class JobLimits:
    """How many jobs not yet completed the spool holds at most: in total, and of one owner
    (`[limits]` max_jobs and max_jobs_per_user)."""

    total: int
    per_user: int


def unfinished_counts(jobs: Iterable[Job], user: str) -> tuple[int, int]:
    """Jobs not yet completed (pending, held, processing): in all, and those `user` owns."""
    total = mine = 0
    for job in jobs:
        if not job.state.is_terminal:
            total += 1
            mine += job.user == user
    return total, mine


def job_limit_refusal(jobs: Iterable[Job], user: str, limits: JobLimits) -> str | None:
    """Why a new job of `user` would go past a limit (the message the client is told, naming
    the limit), or None when it may be created."""
    total, mine = unfinished_counts(jobs, user)
    if total >= limits.total:
        return (f"the server already holds {total} unfinished jobs, its limit "
                f"(limits.max_jobs); try again when some have printed")
    if mine >= limits.per_user:
        return (f"user {user!r} already has {mine} unfinished jobs, the limit per user "
                f"(limits.max_jobs_per_user); try again when some have printed")
    return None


def job_snapshot(job: Job) -> JobSnapshot:
    return JobSnapshot(
        id=job.id, printer=job.printer, name=job.name, user=job.user, state=job.state,
        reasons=tuple(job.reasons), message=job.message, document_format=job.document_format,
        impressions_completed=job.impressions_completed, sheets_completed=job.sheets_completed,
        bytes_sent=job.bytes_sent, attempts=job.attempts, origin_host=job.origin_host,
        user_authenticated=job.user_authenticated, document_bytes=job.document_bytes)


@dataclass
class PersistLatency:
    """How long changes wait to reach the disk: from the first change of a batch to the end
    of its write (the figure bench/ reports)."""

    batches: int = 0
    records: int = 0
    last: float = 0.0
    worst: float = 0.0
    total: float = 0.0
    samples: list[float] = field(default_factory=list)  # the last 1000, for percentiles

    def add(self, seconds: float, records: int) -> None:
        self.batches += 1
        self.records += records
        self.last = seconds
        self.worst = max(self.worst, seconds)
        self.total += seconds
        self.samples.append(seconds)
        del self.samples[:-1000]


class JobStore:
    def __init__(self, loaded: LoadedSpool, bus: EventBus, *, printers: Iterable[str],
                 job_history: int, multiple_operation_timeout: float,
                 run_blocking: BlockingRunner = trio.to_thread.run_sync) -> None:
        self.spool = loaded.spool
        self.run_blocking = run_blocking
        self.bus = bus
        self.job_history = job_history
        self.multiple_operation_timeout = multiple_operation_timeout
        self.jobs: dict[int, Job] = {}
        # Jobs of printers that are not configured (renamed, removed, or a --printer run):
        # kept on disk untouched, never printed or trimmed, back when their printer is.
        self.orphans: dict[int, Job] = {}
        self.revision = 0  # bumped on every change: lets readers cache what they derive
        self.paused: set[str] = set(loaded.paused)
        self.next_job_id = self._job_id_mark = loaded.job_id_mark
        self.persist_latency = PersistLatency()
        # What the writer still has to do. Records are rendered when a batch is taken, so a
        # job that changed several times is written once, as it is then.
        self._dirty: dict[int, None] = {}
        self._deleted: dict[int, bool] = {}  # job-id -> whole job (True) or its document
        self._mark_dirty = False
        self._paused_dirty = False
        self._pending_since: float | None = None  # monotonic time of the oldest unwritten change
        self._changes = 0  # changes that need the disk, ever
        self._durable = 0  # of those, how many are on disk
        self._work = trio.Event()
        self._write_lock = trio.Lock()
        self._load(loaded.jobs, set(printers))

    # -- reading -------------------------------------------------------------------------

    def jobs_of(self, printer: str) -> list[Job]:
        return [job for job in self.jobs.values() if job.printer == printer]

    def next_job(self, printer: str) -> Job | None:
        for job in self.jobs.values():  # dicts keep insertion order: oldest first
            if job.printer == printer and job.state is JobState.PENDING:
                return job
        return None

    def job_limit_refusal(self, user: str, limits: JobLimits) -> str | None:
        """See `job_limit_refusal`. Jobs of printers not configured (`orphans`) are left out:
        nothing can print or cancel them until their printer returns, so counting them would
        refuse everyone's jobs for good."""
        return job_limit_refusal(self.jobs.values(), user, limits)

    def queued_count(self, printer: str) -> int:
        return sum(1 for job in self.jobs.values()
                   if job.printer == printer and not job.state.is_terminal)

    # -- the one change path -------------------------------------------------------------

    def create(self, printer: str, *, name: str, user: str, template: dict[str, object],
               document_format: str, **fields: object) -> Job:
        """A new job; `fields` sets other job attributes in its first record (hold_until,
        say). Await `flushed()` before telling anyone its id: the record and the job-id mark
        covering that id are then on disk."""
        job_id = self.next_job_id
        self.next_job_id += 1
        if job_id >= self._job_id_mark:
            self._job_id_mark = job_id + JOB_ID_BLOCK
            self._mark_dirty = True
        job = Job(id=job_id, printer=printer, uuid=f"urn:uuid:{uuid.uuid4()}", name=name,
                  user=user, template=dict(template), document_format=document_format)
        for field_name, value in fields.items():
            setattr(job, field_name, value)
        self.jobs[job_id] = job
        self._persist(job)
        self.bus.publish(JobCreated(self.revision, time.time(), job_snapshot(job)))
        log.info("printer %s: job %d: created by %s (%r)", printer, job_id, user, name)
        return job

    def transition(self, job: Job, event: JobEvent, *reasons: str, message: str | None = None,
                   **fields: object) -> None:
        """Apply `event` (raises InvalidTransition when the job's state forbids it), then set
        `fields` (job attributes that change with it, such as hold_until or attempts)."""
        previous = job.state
        job.apply(event, *reasons, message=message)
        for name, value in fields.items():
            setattr(job, name, value)
        self._persist(job)
        if job.state.is_terminal:
            self._deleted.setdefault(job.id, False)  # its document is no longer needed
        self._publish_state(job, previous)
        if job.state.is_terminal:
            self._trim_history()

    def update(self, job: Job, *, reasons: list[str] | None = None, message: str | None = None,
               **fields: object) -> None:
        """Change what a job says or holds without a change of state: its reasons or message
        (published), or other attributes such as its document's size (only persisted)."""
        visible = (reasons is not None and reasons != job.reasons) or (
            message is not None and message != job.message)
        if reasons is not None:
            job.reasons = reasons or ["none"]
        if message is not None:
            job.message = message
        for name, value in fields.items():
            setattr(job, name, value)
        self._persist(job)
        if visible:
            self._publish_state(job, job.state)

    def progress(self, job: Job, *, impressions: int, sheets: int, bytes_sent: int) -> None:
        """Pages and bytes sent so far (published; persisted with the next state change)."""
        job.impressions_completed, job.sheets_completed, job.bytes_sent = (
            impressions, sheets, bytes_sent)
        self.revision += 1
        self.bus.publish(JobProgress(self.revision, time.time(), job_snapshot(job)))

    def report_attempt(self, job: Job, transport: str, *, path: str = "", seconds: float = 0.0,
                       failure: str = "", device: bool = False) -> None:
        """How an attempt at printing `job` went (`JobAttempt`, for metrics); nothing is
        written, but the revision moves on like for every event."""
        self.revision += 1
        self.bus.publish(JobAttempt(self.revision, time.time(), job_snapshot(job), transport,
                                    path=path, seconds=seconds, failure=failure,
                                    device=device))

    def discard(self, job: Job, why: str) -> None:
        """Forget a job whose creating request failed: the client was told so and holds no
        job-id, so nothing of it may stay queued or listed."""
        if self.jobs.pop(job.id, None) is None:
            return
        self._dirty.pop(job.id, None)
        self._deleted[job.id] = True
        self._note_change()
        log.info("printer %s: job %d: discarded, its request failed (%s)", job.printer, job.id,
                 why)
        if not job.state.is_terminal:  # subscribers saw it created: tell them it is gone
            previous = job.state
            job.state, job.reasons, job.message = (
                JobState.ABORTED, ["aborted-by-system"], "Its request failed.")
            self._publish_state(job, previous)

    def set_paused(self, printer: str, paused: bool) -> None:
        if (printer in self.paused) == paused:
            return
        if paused:
            self.paused.add(printer)
        else:
            self.paused.discard(printer)
        self._paused_dirty = True
        self._note_change()

    def purge(self, job_ids: Iterable[int]) -> None:
        """Delete jobs outright (orphans an operator purges)."""
        for job_id in job_ids:
            self.orphans.pop(job_id, None)
            self.jobs.pop(job_id, None)
            self._dirty.pop(job_id, None)
            self._deleted[job_id] = True
        self._note_change()

    def expire_incoming(self) -> None:
        """Abort jobs whose document never came within multiple-operation-time-out."""
        limit = time.time() - self.multiple_operation_timeout
        for job in list(self.jobs.values()):
            if (job.state is JobState.PENDING_HELD and "job-incoming" in job.reasons
                    and job.created < limit):
                try:
                    self.transition(job, JobEvent.ABORT, "aborted-by-system",
                                    message="No document arrived within "
                                    "multiple-operation-time-out.")
                except InvalidTransition:
                    continue
                log.info("printer %s: job %d: aborted, no document in time", job.printer,
                         job.id)

    def publish_printer(self, snapshot: PrinterSnapshot, *, config: bool = False,
                        removed: bool = False) -> None:
        """A printer's visible state changed (or, with `config`, its configuration)."""
        self.revision += 1
        self.bus.publish(PrinterConfigChanged(self.revision, time.time(), snapshot, removed)
                         if config else
                         PrinterStateChanged(self.revision, snapshot.state_changed_at, snapshot))

    def _publish_state(self, job: Job, previous: JobState) -> None:
        self.revision += 1
        snapshot = job_snapshot(job)
        event = (JobCompleted if job.state.is_terminal else JobStateChanged)(
            self.revision, time.time(), snapshot, previous)
        self.bus.publish(event)

    def _persist(self, job: Job) -> None:
        self._dirty[job.id] = None
        self._note_change()

    def _note_change(self) -> None:
        self.revision += 1
        self._changes += 1
        if self._pending_since is None:
            self._pending_since = time.monotonic()
        self._work.set()

    def _trim_history(self) -> None:
        done = [job for job in self.jobs.values() if job.state.is_terminal]
        excess = done[: max(0, len(done) - self.job_history)]
        for job in excess:
            del self.jobs[job.id]
            self._dirty.pop(job.id, None)
            self._deleted[job.id] = True
        if excess:
            self._note_change()

    def _load(self, jobs: list[Job], printers: set[str]) -> None:
        for job in jobs:
            self.next_job_id = max(self.next_job_id, job.id + 1)
            if job.printer not in printers:
                self.orphans[job.id] = job
                continue
            self.jobs[job.id] = job
            if job.state in (JobState.PROCESSING, JobState.PROCESSING_STOPPED):
                job.apply(JobEvent.REQUEUE, "job-queued", message="Resumed after a restart.")
                self._persist(job)
                log.info("printer %s: job %d: resumed after restart", job.printer, job.id)
        self._report_orphans()
        self._trim_history()

    def set_printers(self, printers: Iterable[str]) -> None:
        """The printers changed in place (a reload): the jobs of a printer no longer
        configured become orphans, a job it was printing requeued (its worker was stopped
        first), as after a restart; the orphans of a printer configured again come back."""
        names = set(printers)
        leaving = [job for job in self.jobs.values() if job.printer not in names]
        returning = [job for job in self.orphans.values() if job.printer in names]
        for job in leaving:
            if job.state in (JobState.PROCESSING, JobState.PROCESSING_STOPPED):
                self.transition(job, JobEvent.REQUEUE, "job-queued",
                                message="Its printer was removed while it printed.")
            del self.jobs[job.id]
            self.orphans[job.id] = job
        if returning:
            for job in returning:
                del self.orphans[job.id]
            # Oldest first, as next_job expects of the dict's order.
            merged = sorted([*self.jobs.values(), *returning], key=lambda job: job.id)
            self.jobs.clear()
            self.jobs.update((job.id, job) for job in merged)
            log.info("spool: %d job(s) of %s are back with their printer", len(returning),
                     ", ".join(sorted({job.printer for job in returning})))
        if leaving:
            self._report_orphans()
        self.revision += 1

    def _report_orphans(self) -> None:
        by_printer: dict[str, list[Job]] = {}
        for job in self.orphans.values():
            by_printer.setdefault(job.printer, []).append(job)
        for printer, jobs in sorted(by_printer.items()):
            waiting = sum(1 for j in jobs if not j.state.is_terminal)
            log.warning("spool: printer %r is not configured; its %d job(s) (%d not finished: "
                        "%s) are kept and print when it is configured again; "
                        "'ipp-gateway jobs --purge-orphans' deletes them", printer, len(jobs),
                        waiting, ", ".join(str(j.id) for j in jobs[:20])
                        + (", ..." if len(jobs) > 20 else ""))

    # -- the disk ------------------------------------------------------------------------

    @property
    def unwritten(self) -> int:
        """Changes not yet on disk."""
        return self._changes - self._durable

    async def flushed(self) -> None:
        """Return once every change made before the call is on disk; raises OSError when the
        spool cannot take it (the changes stay pending and the writer keeps trying)."""
        target = self._changes
        while self._durable < target:
            async with self._write_lock:
                if self._durable < target:
                    await self._write_batch()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """The writer: writes what changed, round after round, until cancelled."""
        task_status.started()
        while True:
            await self._work.wait()
            self._work = trio.Event()
            await trio.sleep(WRITE_DELAY)  # let the changes that follow join the batch
            try:
                await self.flushed()
            except OSError as exc:
                log.error("spool: cannot write %d change(s) (%s); retrying", self.unwritten,
                          exc.strerror or exc)
                self._work.set()
                await trio.sleep(RETRY_WRITE_AFTER)

    async def close(self) -> None:
        """The last round, with the exact next job-id: a clean stop wastes no reserved ids
        (after a crash the next run starts at the reserved mark instead)."""
        if self._job_id_mark != self.next_job_id:
            self._job_id_mark = self.next_job_id
            self._mark_dirty = True
            self._note_change()
        try:
            await self.flushed()
        except OSError as exc:
            log.error("spool: cannot write the last %d change(s) (%s)", self.unwritten,
                      exc.strerror or exc)

    async def _write_batch(self) -> None:
        target = self._changes
        started = self._pending_since
        records = ((job_id, self._record_of(job_id)) for job_id in self._dirty)
        batch = SpoolBatch(
            records=[(job_id, json.dumps(record).encode()) for job_id, record in records
                     if record is not None],
            deleted=dict(self._deleted),
            job_id_mark=self._job_id_mark if self._mark_dirty else None,
            paused=sorted(self.paused) if self._paused_dirty else None)
        dirty, deleted = self._dirty, self._deleted
        mark_dirty, paused_dirty = self._mark_dirty, self._paused_dirty
        self._dirty, self._deleted = {}, {}
        self._mark_dirty = self._paused_dirty = False
        self._pending_since = None
        try:
            await self.run_blocking(self.spool.write_batch, batch)
        except BaseException:
            # Not written: put it back (under what changed meanwhile) for the next round.
            self._dirty = {**dirty, **self._dirty}
            self._deleted = {**deleted, **self._deleted}
            self._mark_dirty |= mark_dirty
            self._paused_dirty |= paused_dirty
            self._pending_since = started if started is not None else self._pending_since
            raise
        self._durable = max(self._durable, target)
        if started is not None:
            self.persist_latency.add(time.monotonic() - started, len(batch.records))

    def _record_of(self, job_id: int) -> dict[str, object] | None:
        job = self.jobs.get(job_id) or self.orphans.get(job_id)
        return None if job is None else job.to_record()
