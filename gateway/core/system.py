"""The System: every printer, the job store and the bus, and the lifetimes of their tasks.

Printers know the store, never the System: the System is the one place that knows both (a
cancel reaches the job through the store and the transfer through its printer).
"""

from __future__ import annotations

import logging
import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

import trio

from gateway.config import Config, PrinterConfig, default_printer
from gateway.core.bus import EventBus
from gateway.core.job import Job, JobEvent
from gateway.core.printer import Printer
from gateway.core.spool import Spool
from gateway.core.store import JobLimits, JobStore, LoadedSpool, load_spool
from gateway.core.subscriptions import SubscriptionStore, follow
from ippwire.enums import JobState

log = logging.getLogger("gateway.system")

PRINT_PATH = "/ipp/print"
WATCHDOG_PERIOD = 5.0


@dataclass(frozen=True)
class PrinterChanges:
    """What a reload did to the printers, by name."""

    added: tuple[str, ...]
    changed: tuple[str, ...]
    removed: tuple[str, ...]


class System:
    def __init__(self, config: Config, loaded: LoadedSpool | None = None) -> None:
        """`loaded` is the spool as `load_spool` read it (`System.open` reads it in a thread);
        without it the spool is read here, blocking (tests, tools)."""
        self.config = config
        loaded = loaded or load_spool(config.spool)
        self.spool: Spool = loaded.spool
        self.uuid = loaded.system_uuid
        self.started_at = time.time()
        self._started_monotonic = time.monotonic()
        self.bus = EventBus()
        # IPP subscriptions (RFC 3995), fed from the bus; not kept across a restart or reload
        self.subscriptions = SubscriptionStore()
        printer_configs: Iterable[PrinterConfig] = config.printers or (
            default_printer(config.spool),)
        names = [printer_config.name for printer_config in printer_configs]
        self.store = JobStore(loaded, self.bus, printers=names,
                              job_history=config.job_history,
                              multiple_operation_timeout=config.multiple_operation_timeout)
        self.printers: dict[str, Printer] = {}
        for printer_config in printer_configs:
            self.printers[printer_config.name] = self._new_printer(printer_config)
        self._nursery: trio.Nursery | None = None  # where printers' workers run (`run`)

    def _new_printer(self, config: PrinterConfig) -> Printer:
        # The UUID follows the name: a printer removed and added again is the same printer
        # to clients, and so is a hot-plugged one (gateway.autoprinters keeps its name).
        return Printer(self.store, config, str(uuid.uuid5(self.uuid, "printer:" + config.name)))

    @classmethod
    async def open(cls, config: Config) -> System:
        """A System whose spool is read off the Trio thread."""
        loaded = await trio.to_thread.run_sync(load_spool, config.spool)
        return cls(config, loaded)

    @property
    def jobs(self) -> dict[int, Job]:
        return self.store.jobs

    @property
    def orphans(self) -> dict[int, Job]:
        return self.store.orphans

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

    def create_job(self, printer: Printer, *, name: str, user: str,
                   template: dict[str, object], document_format: str, **fields: object) -> Job:
        """A new job (see JobStore.create: await `store.flushed()` before telling anyone)."""
        return self.store.create(printer.name, name=name, user=user, template=template,
                                 document_format=document_format, **fields)

    def job_limit_refusal(self, user: str) -> str | None:
        """Why a new job of `user` would go past `[limits]` max_jobs or max_jobs_per_user
        (None: it may be created). Check it with no await before `create_job`, so that two
        requests cannot both take the last place."""
        limits = self.config.limits
        return self.store.job_limit_refusal(
            user, JobLimits(limits.max_jobs, limits.max_jobs_per_user))

    async def spool_free_bytes(self) -> int:
        """Free space on the spool's filesystem (raises OSError). The statvfs runs in a
        thread: cheap on a local disk, but a spool on NFS or a dying SD card may block."""
        return await trio.to_thread.run_sync(self.spool.free_bytes)

    def jobs_of(self, printer: Printer) -> list[Job]:
        return self.store.jobs_of(printer.name)

    async def queue_job(self, job: Job) -> None:
        """The job's document is complete: once that is on disk, let its printer pick it up
        (raises OSError when the spool cannot record it; the caller disposes of the job)."""
        if job.state is JobState.PENDING_HELD and "job-incoming" in job.reasons:
            if job.hold_until not in ("", "no-hold"):
                self.store.transition(job, JobEvent.CLOSE)
                self.store.transition(job, JobEvent.HOLD, "job-hold-until-specified")
            else:
                self.store.transition(job, JobEvent.CLOSE, "job-queued")
        await self.store.flushed()
        self.printers[job.printer].wake()

    def cancel_job(self, job: Job, reason: str = "job-canceled-by-user") -> None:
        self.store.transition(job, JobEvent.CANCEL, reason, message="Canceled.")
        self.printers[job.printer].cancel_current(job)
        log.info("printer %s: job %d: canceled (%s)", job.printer, job.id, reason)

    def discard_job(self, job: Job, why: str) -> None:
        """Forget a job whose creating request failed (see JobStore.discard)."""
        printer = self.printers.get(job.printer)
        if printer is not None:
            printer.cancel_current(job)
        self.store.discard(job, why)

    # -- reload --------------------------------------------------------------------------

    async def reconfigure(self, config: Config) -> PrinterChanges:
        """Apply `config` in place (a reload; its spool must be this one). Printers are
        added, changed or removed without a restart: a changed printer's job in flight
        finishes on the old settings (Printer.reconfigure); a removed printer's worker stops,
        and its jobs stay in the spool as orphans until a printer of that name comes back.
        Every change is published (PrinterConfigChanged), which DNS-SD, the dashboard and
        IPP notifications follow."""
        wanted = config.printers or (default_printer(config.spool),)
        names = {printer_config.name for printer_config in wanted}
        removed = [printer for name, printer in self.printers.items() if name not in names]
        for printer in removed:
            await printer.stop()
        self.config = config
        self.store.job_history = config.job_history
        self.store.multiple_operation_timeout = config.multiple_operation_timeout
        printers: dict[str, Printer] = {}
        added: list[Printer] = []
        changed: list[str] = []
        for printer_config in wanted:
            existing = self.printers.get(printer_config.name)
            if existing is None:
                existing = self._new_printer(printer_config)
                added.append(existing)
            elif existing.config != printer_config:
                existing.reconfigure(printer_config)
                changed.append(existing.name)
            printers[printer_config.name] = existing
        self.printers = printers
        self.store.set_printers(printers)
        for printer in removed:
            self.store.publish_printer(printer.snapshot(), config=True, removed=True)
            log.info("printer %s: removed", printer.name)
        for printer in added:
            if self._nursery is not None:
                self._nursery.start_soon(printer.run, name=f"printer:{printer.name}")
            self.store.publish_printer(printer.snapshot(), config=True)
            log.info("printer %s: added: %s (driver %s)", printer.name,
                     printer.device_uri.redacted(), printer.driver.name)
        return PrinterChanges(tuple(p.name for p in added), tuple(changed),
                              tuple(p.name for p in removed))

    # -- lifetime ------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
                  ) -> None:
        """The store's writer, every printer's worker and the watchdog, until cancelled; the
        writer's last round (and the exact next job-id) is written on the way out."""
        try:
            async with trio.open_nursery() as nursery:
                self._nursery = nursery
                await nursery.start(self.store.run)
                for printer in self.printers.values():
                    nursery.start_soon(printer.run, name=f"printer:{printer.name}")
                nursery.start_soon(self._watchdog)
                nursery.start_soon(follow, self.bus, self.subscriptions, time.time,
                                   name="notifications")
                task_status.started()
        finally:  # after every printer has stopped: what they changed last is written too
            self._nursery = None
            with trio.CancelScope(shield=True):
                await self.store.close()
            # Subscribers (the dashboard's pages, notifications) follow this System only:
            # ended, they start again on the one that replaces it (a reload).
            self.bus.close()

    async def _watchdog(self) -> None:
        while True:
            await trio.sleep(WATCHDOG_PERIOD)
            self.store.expire_incoming()
