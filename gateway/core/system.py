"""The System: every printer, every job, the spool, and the lifetimes of their tasks."""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable

import trio

from gateway.config import Config, PrinterConfig, default_printer
from gateway.core.job import InvalidTransition, Job, JobEvent
from gateway.core.printer import Printer
from gateway.core.spool import Spool
from gateway.ipp.enums import JobState

log = logging.getLogger("gateway.system")

PRINT_PATH = "/ipp/print"
WATCHDOG_PERIOD = 5.0
JOB_ID_BLOCK = 100  # job-ids reserved on disk at a time (one system.json write per block)


class System:
    def __init__(self, config: Config) -> None:
        self.config = config
        self.spool = Spool(config.spool)
        self.uuid = self.spool.system_uuid()
        self.started_at = time.time()
        self._started_monotonic = time.monotonic()
        printer_configs: Iterable[PrinterConfig] = config.printers or (
            default_printer(config.spool),)
        self.printers: dict[str, Printer] = {}
        for printer_config in printer_configs:
            printer_uuid = str(uuid.uuid5(self.uuid, "printer:" + printer_config.name))
            self.printers[printer_config.name] = Printer(self, printer_config, printer_uuid)
        self.jobs: dict[int, Job] = {}
        # Jobs of printers that are not configured (renamed, removed, or a --printer run):
        # kept on disk untouched, never printed or trimmed, back when their printer is.
        self.orphans: dict[int, Job] = {}
        self.jobs_revision = 0  # bumped on every job change: lets readers cache what they derive
        self.next_job_id = self._job_id_mark = self.spool.job_id_mark()
        self._load_jobs()

    # -- lookup --------------------------------------------------------------------------

    @property
    def default_printer(self) -> Printer:
        return next(iter(self.printers.values()))

    def printer_for_path(self, path: str) -> Printer | None:
        path = path.rstrip("/")
        if path == PRINT_PATH:
            return self.default_printer
        prefix = PRINT_PATH + "/"
        if path.startswith(prefix):
            return self.printers.get(path[len(prefix):])
        return None

    def printer_path(self, printer: Printer) -> str:
        return f"{PRINT_PATH}/{printer.name}"

    def up_time(self) -> int:
        """Seconds since start, at least 1 (IPP wants a positive printer-up-time)."""
        return int(time.monotonic() - self._started_monotonic) + 1

    def to_up_time(self, wall: float | None) -> int | None:
        return None if wall is None else max(1, int(wall - self.started_at) + 1)

    # -- jobs ----------------------------------------------------------------------------

    def _load_jobs(self) -> None:
        for job in self.spool.load_all():
            self.next_job_id = max(self.next_job_id, job.id + 1)
            if job.printer not in self.printers:
                self.orphans[job.id] = job
                continue
            if job.state in (JobState.PROCESSING, JobState.PROCESSING_STOPPED):
                job.apply(JobEvent.REQUEUE, "job-queued", message="Resumed after a restart.")
                self.spool.save(job)
                log.info("printer %s: job %d: resumed after restart", job.printer, job.id)
            self.jobs[job.id] = job
        self._report_orphans()
        self._trim_history()

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

    def create_job(self, printer: Printer, *, name: str, user: str, template: dict[str, object],
                   document_format: str) -> Job:
        job_id = self.next_job_id
        if job_id >= self._job_id_mark:  # on disk before the id is handed out
            self._job_id_mark = job_id + JOB_ID_BLOCK
            self.spool.save_job_id_mark(self._job_id_mark)
        self.next_job_id += 1
        job = Job(id=job_id, printer=printer.name, uuid=f"urn:uuid:{uuid.uuid4()}", name=name,
                  user=user, template=dict(template), document_format=document_format)
        self.jobs[job_id] = job
        self.save(job)
        log.info("printer %s: job %d: created by %s (%r)", printer.name, job_id, user, name)
        return job

    def save(self, job: Job) -> None:
        self.jobs_revision += 1
        self.spool.save(job)

    def jobs_of(self, printer: Printer) -> list[Job]:
        return [j for j in self.jobs.values() if j.printer == printer.name]

    def next_job(self, printer: Printer) -> Job | None:
        for job in self.jobs.values():  # dicts keep insertion order: oldest first
            if job.printer == printer.name and job.state is JobState.PENDING:
                return job
        return None

    def queue_job(self, job: Job) -> None:
        """The job's document is complete: let its printer pick it up."""
        if job.state is JobState.PENDING_HELD and "job-incoming" in job.reasons:
            if job.hold_until not in ("", "no-hold"):
                job.apply(JobEvent.CLOSE)
                job.apply(JobEvent.HOLD, "job-hold-until-specified")
            else:
                job.apply(JobEvent.CLOSE, "job-queued")
        self.save(job)
        self.printers[job.printer].wake()

    def cancel_job(self, job: Job, reason: str = "job-canceled-by-user") -> None:
        job.apply(JobEvent.CANCEL, reason, message="Canceled.")
        self.printers[job.printer].cancel_current(job)
        self.job_finished(job)
        log.info("printer %s: job %d: canceled (%s)", job.printer, job.id, reason)

    def job_finished(self, job: Job) -> None:
        """Persist the job; drop its document once it is terminal; bound the history."""
        self.save(job)
        if job.state.is_terminal:
            self.spool.delete_document(job.id)
            self._trim_history()

    def close(self) -> None:
        """A clean stop: the next run goes on at the next job-id, not at the reserved mark
        (after a crash it starts at the mark, skipping ids that may have been handed out)."""
        if self.next_job_id != self._job_id_mark:
            self._job_id_mark = self.next_job_id
            self.spool.save_job_id_mark(self.next_job_id)

    def discard_job(self, job: Job, why: str) -> None:
        """Forget a job whose creating request failed: the client was told so and holds no
        job-id, so nothing of it may stay queued or listed."""
        if self.printers.get(job.printer) is not None:
            self.printers[job.printer].cancel_current(job)
        self.jobs.pop(job.id, None)
        self.jobs_revision += 1
        log.info("printer %s: job %d: discarded, its request failed (%s)", job.printer, job.id,
                 why)
        try:
            self.spool.delete(job.id)
        except OSError as exc:  # the spool failing is often why the request failed
            log.error("printer %s: job %d: spool: cannot delete its files (%s)", job.printer,
                      job.id, exc.strerror)

    def _trim_history(self) -> None:
        done = [j for j in self.jobs.values() if j.state.is_terminal]
        for job in done[: max(0, len(done) - self.config.job_history)]:
            del self.jobs[job.id]
            self.spool.delete(job.id)
            self.jobs_revision += 1

    def _expire_incoming(self) -> None:
        limit = time.time() - self.config.multiple_operation_timeout
        for job in list(self.jobs.values()):
            if (job.state is JobState.PENDING_HELD and "job-incoming" in job.reasons
                    and job.created < limit):
                try:
                    job.apply(JobEvent.ABORT, "aborted-by-system",
                              message="No document arrived within multiple-operation-time-out.")
                except InvalidTransition:
                    continue
                log.info("printer %s: job %d: aborted, no document in time", job.printer,
                         job.id)
                self.job_finished(job)

    # -- lifetime ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        async with trio.open_nursery() as nursery:
            for printer in self.printers.values():
                nursery.start_soon(printer.run, name=f"printer:{printer.name}")
            nursery.start_soon(self._watchdog)
            task_status.started()

    async def _watchdog(self) -> None:
        while True:
            await trio.sleep(WATCHDOG_PERIOD)
            self._expire_incoming()
