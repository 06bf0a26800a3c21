"""A printer: its state, its queue and the one worker task that prints its jobs in turn.

The worker applies every device failure's `Outcome` in one place (`_apply_failure`), so each
transport only has to say what a failure means, never what to do about it.
"""

from __future__ import annotations

import logging
import math
import socket
import time
from dataclasses import dataclass

import trio

from drivers import (
    MEDIA_SIZES,
    Capabilities,
    ConversionError,
    DeviceStatus,
    DeviceUri,
    Driver,
    DriverError,
    FormatRefused,
    JobInfo,
    Outcome,
    Progress,
    Supply,
    Transport,
    choose_ipp_driver,
    get_driver,
    open_transport,
    print_document,
    raw_command_set,
)
from gateway.config import PrinterConfig
from gateway.core.events import PrinterSnapshot
from gateway.core.job import Job, JobEvent, print_options
from gateway.core.store import JobStore
from ippwire.enums import JobState, PrinterState

log = logging.getLogger("gateway.printer")

RETRY_DELAYS = (1.0, 2.0, 5.0, 10.0, 30.0, 60.0)
ABORT_GRACE = 5.0
STATUS_TIMEOUT = 10.0
JOB_STATUS_INTERVAL = 1.0  # seconds between status looks through a job's transport


def capabilities_for(driver: Driver, config: PrinterConfig) -> Capabilities:
    """The driver's defaults with the printer's configured overrides."""
    caps = driver.capabilities
    changes: dict[str, object] = {}
    if config.make_and_model:
        changes["make_and_model"] = config.make_and_model
    if config.media:
        changes["media"] = tuple(MEDIA_SIZES[m] for m in config.media)
        changes["media_default"] = config.media_default or config.media[0]
    if config.resolutions:
        changes["resolutions"] = config.resolutions
        changes["default_resolution"] = max(config.resolutions)
    if config.color is not None:
        changes["color"] = config.color
    if config.duplex is not None:
        changes["duplex"] = config.duplex
    if config.pjl is not None:
        changes["command_set"] = caps.with_pjl(config.pjl).command_set
    if config.formats:  # a raw queue passes exactly these through
        changes["document_formats"] = config.formats
        changes["command_set"] = raw_command_set(config.formats)
    return caps.with_changes(**changes) if changes else caps


@dataclass(frozen=True)
class _JobSettings:
    driver: Driver
    capabilities: Capabilities
    device_uri: DeviceUri


class Printer:
    """One printer. Every change of what IPP shows of it (state, reasons, message) goes
    through `_change`, which publishes `PrinterStateChanged`; every job change goes through
    the store."""

    def __init__(self, store: JobStore, config: PrinterConfig, uuid: str) -> None:
        self.store = store
        self.config = config
        self.name = config.name
        self.uuid = uuid
        self.driver = get_driver(config.driver)
        self.capabilities = capabilities_for(self.driver, config)
        self.device_uri = DeviceUri.parse(config.device_uri)
        self.state = PrinterState.IDLE
        self.device_reasons: set[str] = set()  # from the last failure
        self.status_reasons: frozenset[str] = frozenset()  # from the device's own status
        self.device_message = ""
        self.supplies: tuple[Supply, ...] = ()  # as the device last reported them
        self.message = "Ready."
        self.paused = False
        if config.name in store.paused:  # paused before a restart
            self.paused, self.state, self.message = True, PrinterState.STOPPED, "Paused."
        self.stopped_by_device = False
        self.waiting_to_retry = False  # a failed job waits out its backoff delay
        self._retry_message = ""  # printer-state-message while it waits
        self.state_changed_at = time.time()
        self.config_changed_at = time.time()
        self.current_job: Job | None = None
        self._job_scope: trio.CancelScope | None = None
        self._job_transport: Transport | None = None  # the transport carrying the current job
        self._status_from_job = False  # status_reasons came from the job's transport
        self._wakeup = trio.Event()  # work may be waiting: a job queued, the printer resumed
        # Ends a retry backoff early: only news about the waiting job (it was canceled), not a
        # new job, which would make a dead device be retried at every submission.
        self._retry_wakeup = trio.Event()
        self.absent = False  # a hot-plugged device that is unplugged (gateway.hotplug)
        # Jobs the device refused in the format we made: the driver converting them once more.
        self._resend_driver: dict[int, Driver] = {}
        self._run_scope = trio.CancelScope()  # `stop` ends the worker (removed on reload)
        self._stopped = trio.Event()
        self._running = False

    def reconfigure(self, config: PrinterConfig) -> None:
        """Take new settings in place (a reload): the job being printed finishes with the
        driver, capabilities and device it started with; the next job uses the new ones."""
        if config == self.config:
            return
        driver = get_driver(config.driver)
        capabilities = capabilities_for(driver, config)
        device_uri = DeviceUri.parse(config.device_uri)
        device_changed = config.device_uri != self.config.device_uri
        self.config, self.driver, self.capabilities = config, driver, capabilities
        self.device_uri = device_uri
        self.config_changed_at = time.time()
        log.info("printer %s: reconfigured: %s (driver %s)", self.name, device_uri.redacted(),
                 driver.name)
        self.store.publish_printer(self.snapshot(), config=True)
        if device_changed:  # what the old device said is not about the new one
            self.stopped_by_device = self.absent = False  # the hotplug monitor re-tells
            self._status_from_job = False
            if self.current_job is None:
                state = PrinterState.STOPPED if self.paused else PrinterState.IDLE
                self._change(state, "Paused." if self.paused else "Ready.",
                             device_reasons=set(), status=(frozenset(), ""))
        self.wake()

    def set_present(self, present: bool) -> None:
        """A hot-plugged device was unplugged (its jobs wait, shown offline) or is back."""
        if present != self.absent:
            return
        self.absent = not present
        if self.absent:
            log.info("printer %s: device unplugged; jobs wait until it is back", self.name)
            state = None if self.current_job is not None else PrinterState.STOPPED
            self._change(state, "The printer is unplugged.")
        else:
            log.info("printer %s: device plugged in", self.name)
            self.stopped_by_device = False
            if self.current_job is None:
                self._change(PrinterState.STOPPED if self.paused else PrinterState.IDLE,
                             "Paused." if self.paused else "Ready.", device_reasons=set(),
                             status=(frozenset(), ""))
            self._retry_wakeup.set()  # a job waiting out its backoff may go now
            self.wake()

    async def stop(self) -> None:
        """End the worker (the printer was removed): a job being printed is stopped, and
        requeued by the store as after a restart."""
        self._run_scope.cancel()
        if self._running:
            await self._stopped.wait()

    # -- state seen over IPP -------------------------------------------------------------

    @property
    def state_reasons(self) -> list[str]:
        reasons = set(self.device_reasons) | self.status_reasons
        if self.absent:
            reasons.add("offline-report")
        if self.paused:
            reasons.add("paused")
        return sorted(reasons) or ["none"]

    def snapshot(self) -> PrinterSnapshot:
        """The printer as advertisers see it now (a copy: it does not follow later changes)."""
        return PrinterSnapshot(
            name=self.name, uuid=self.uuid, state=self.state,
            reasons=tuple(self.state_reasons), message=self.message,
            state_changed_at=self.state_changed_at, config_changed_at=self.config_changed_at,
            paused=self.paused, queued_jobs=self.store.queued_count(self.name),
            device_status=self.device_message, supplies=self.supplies)

    def _change(self, state: PrinterState | None = None, message: str | None = None, *,
                device_reasons: set[str] | None = None,
                status: tuple[frozenset[str], str] | None = None,
                paused: bool | None = None, supplies: tuple[Supply, ...] | None = None
                ) -> None:
        """The one way the printer's visible state changes: apply, then publish when state,
        reasons, message or supply levels differ from before."""
        before = (self.state, self.state_reasons, self.message)
        supplies_changed = supplies is not None and supplies != self.supplies
        if supplies is not None:
            self.supplies = supplies
        if device_reasons is not None:
            self.device_reasons = device_reasons
        if status is not None:
            self.status_reasons, self.device_message = status
        if paused is not None:
            self.paused = paused
        if state is not None:
            self.state = state
        if message is not None:
            self.message = message
        if (self.state, self.state_reasons, self.message) != before:
            self.state_changed_at = time.time()
            self.store.publish_printer(self.snapshot())
        elif supplies_changed:
            self.store.publish_printer(self.snapshot())

    def wake(self) -> None:
        self._wakeup.set()

    def pause(self) -> None:
        self.store.set_paused(self.name, True)
        if self.current_job is None:
            self._change(PrinterState.STOPPED, "Paused.", paused=True)
        else:
            self._change(paused=True)
        log.info("printer %s: paused", self.name)

    def resume(self) -> None:
        self.store.set_paused(self.name, False)
        self.stopped_by_device = False
        for job in self.store.jobs_of(self.name):  # the jobs the stop left waiting go on
            if job.state is JobState.PENDING and "printer-stopped" in job.reasons:
                self.store.update(job, reasons=[r for r in job.reasons
                                                if r != "printer-stopped"] or ["job-queued"])
        if self.current_job is None:
            self._change(PrinterState.IDLE, "Ready.", device_reasons=set(), paused=False)
        else:
            self._change(device_reasons=set(), paused=False)
        log.info("printer %s: resumed", self.name)
        self.wake()

    def cancel_current(self, job: Job) -> None:
        """Stop the transfer of `job` if it is the one printing (its state is already set)."""
        if self.current_job is job and self._job_scope is not None:
            self._job_scope.cancel()
        elif self.waiting_to_retry:
            self._retry_wakeup.set()  # the job waiting out its backoff may be this one: settle now

    # -- the worker ----------------------------------------------------------------------

    async def run(self) -> None:
        self._running = True
        try:
            with self._run_scope:
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._poll_status)
                    await self._print_jobs()
        finally:
            self._stopped.set()

    async def _poll_status(self) -> None:
        """Between jobs, ask the device every `status_interval` seconds (0 = never). During a
        job, ask the job's own transport every second instead: it knows whether the device is
        taking data (serial flow control, USB port status, LPD acknowledgments, the PJL back
        channel) without a second connection that a single-connection device would refuse."""
        last_idle_query = -math.inf
        while True:
            transport = self._job_transport
            if transport is not None:
                await self.refresh_status(transport)
            elif (self.config.status_interval > 0 and self.current_job is None
                    and not self.absent
                    and trio.current_time() - last_idle_query >= self.config.status_interval):
                last_idle_query = trio.current_time()
                await self.refresh_status()
            idle_interval = self.config.status_interval or JOB_STATUS_INTERVAL
            await trio.sleep(min(JOB_STATUS_INTERVAL, idle_interval))

    async def refresh_status(self, job_transport: Transport | None = None) -> None:
        """Query the device (through `job_transport` while that carries a job) and publish
        what it says as printer-state-reasons and printer-state-message."""
        status: DeviceStatus | None = None
        with trio.move_on_after(STATUS_TIMEOUT) as scope:
            try:
                status = await (job_transport or open_transport(self.device_uri)).query_status()
            except DriverError as failure:
                status = DeviceStatus(frozenset({failure.reason or "offline"}), failure.message,
                                      online=False)
        if scope.cancelled_caught:
            status = DeviceStatus(frozenset({"offline"}), "The device did not answer.", False)
        if status is None or (job_transport is not None
                              and job_transport is not self._job_transport):
            return  # nothing to tell, or the job ended while we asked: the answer is stale
        reasons = frozenset(r if r.endswith(("-report", "-warning", "-error")) else r + "-report"
                            for r in status.reasons if r != "none")
        if reasons != self.status_reasons or status.message != self.device_message:
            # A new reason is news; a message that only counts on ("no data taken for 12 s")
            # would otherwise write a line a second for as long as a job stalls.
            level = logging.INFO if reasons != self.status_reasons else logging.DEBUG
            job = f"job {self.current_job.id}: " if self.current_job is not None else ""
            log.log(level, "printer %s: %sdevice status: %s%s", self.name, job,
                    ", ".join(sorted(reasons)) or "none",
                    f" ({status.message})" if status.message else "")
        self._status_from_job = job_transport is not None
        state: PrinterState | None = None
        message: str | None = None
        if job_transport is not None and self.current_job is not None:
            printing = f"Printing job {self.current_job.id}."
            state = PrinterState.PROCESSING
            message = f"{printing} {status.message}" if status.message else printing
        elif (self.current_job is None and not self.paused and not self.stopped_by_device
                and not self.absent):
            if not self.waiting_to_retry:
                state, message = PrinterState.IDLE, status.message or "Ready."
            elif status.message:  # what the device says while the job waits to retry
                state = PrinterState.PROCESSING
                message = f"{self._retry_message} Device: {status.message}"
        self._change(state, message, status=(reasons, status.message),
                     supplies=status.supplies or None)

    async def _print_jobs(self) -> None:
        delay_index = 0
        while True:
            job = None if self.paused or self.stopped_by_device or self.absent else (
                self.store.next_job(self.name))
            if job is None:
                self._settle_idle()
                self._wakeup = trio.Event()
                await self._wakeup.wait()
                continue
            retry = await self._print(job)
            if retry is None:
                delay_index = 0
                continue
            # A retryable failure: wait (interruptibly) before the next attempt. "Retry now"
            # is honoured once in a row: a device failing that way every time would spin.
            immediate = retry is Outcome.RETRY_CURRENT and delay_index == 0
            delay = 0.0 if immediate else RETRY_DELAYS[min(delay_index, len(RETRY_DELAYS) - 1)]
            delay_index += 1
            self._retry_wakeup = trio.Event()
            self.waiting_to_retry = True
            try:
                with trio.move_on_after(delay):
                    await self._retry_wakeup.wait()
            finally:
                self.waiting_to_retry = False

    def _settle_idle(self) -> None:
        """No job left to print: reasons from a failed attempt no longer apply (the job they
        were about was canceled or held while waiting to retry)."""
        if self.paused or self.stopped_by_device or self.absent or not (
                self.device_reasons or self.state is PrinterState.PROCESSING):
            return
        self._change(PrinterState.IDLE, self.device_message or "Ready.", device_reasons=set())

    async def _print(self, job: Job) -> Outcome | None:
        """Print one job; returns the outcome to retry with, or None when the job is done."""
        self.store.transition(job, JobEvent.START, "job-printing", attempts=job.attempts + 1,
                              impressions_completed=0, sheets_completed=0, bytes_sent=0)
        self.current_job = job
        # The settings this job prints with, whatever a reload changes meanwhile.
        driver = self._resend_driver.get(job.id, self.driver)
        settings = _JobSettings(driver, self.capabilities if driver is self.driver
                                else capabilities_for(driver, self.config), self.device_uri)
        self._change(PrinterState.PROCESSING, f"Printing job {job.id}.")
        log.info("printer %s: job %d: printing (attempt %d) to %s", self.name, job.id,
                 job.attempts, settings.device_uri.redacted())
        transport: Transport | None = None
        retry: Outcome | None = None
        try:
            with trio.CancelScope() as scope:
                self._job_scope = scope
                transport = self._job_transport = open_transport(settings.device_uri)
                path, seconds = await self._send_document(job, transport, settings)
                transport = None  # end_job returned: the device holds every byte
                self._report_attempt(job, settings, path=path, seconds=seconds)
                self._job_done(job)
        except DriverError as failure:
            self._report_attempt(job, settings, failure=failure)
            retry = self._apply_failure(job, failure)
        except Exception as exc:  # a bug: log at the job boundary and keep the server up
            if job.state.is_terminal:  # canceled meanwhile: its document may be gone already
                log.info("printer %s: job %d: %s while printing (%s)", self.name, job.id,
                         job.state.name.lower(), type(exc).__name__)
            else:
                log.exception("printer %s: job %d: internal error while printing", self.name,
                              job.id)
                self.store.transition(job, JobEvent.ABORT, "aborted-by-system",
                                      message="Internal error.")
        finally:
            self._job_scope = None
            self.current_job = None
            self._job_transport = None
            self._forget_job_status()
            if transport is not None:
                await self._abort_quietly(job, transport)
            if self.absent:
                self._change(PrinterState.STOPPED, "The printer is unplugged.")
            elif not self.stopped_by_device and not self.paused and retry is None:
                self._change(PrinterState.IDLE, "Ready.")
            elif self.paused and not self.stopped_by_device:
                self._change(PrinterState.STOPPED, "Paused.")
        if retry is None:
            self._resend_driver.pop(job.id, None)
        # On disk before the next job: after a kill -9, a printed job is not printed again.
        await self._flush_quietly(job)
        return retry

    async def _flush_quietly(self, job: Job) -> None:
        try:
            await self.store.flushed()
        except OSError as exc:  # the writer keeps trying; printing goes on meanwhile
            log.error("printer %s: job %d: spool: cannot record its state (%s)", self.name,
                      job.id, exc.strerror or exc)

    async def _send_document(self, job: Job, transport: Transport, settings: _JobSettings
                             ) -> tuple[str, float]:
        """Send `job` through `transport`; returns the document's route (the plan's steps)
        and the seconds it took from the plan to the last byte handed over."""
        raw = settings.driver.passes_through
        # A raw queue passes application/octet-stream as it came, whatever it looks like;
        # a converting one prints what the document was found to be.
        fmt = job.document_format if raw else (job.format_detected or job.document_format)
        options = print_options(job)
        # The data carries the copies (&l#X, /NumCopies, or the document sent n times, raw
        # included), so the device is asked for one. Its length is known beforehand only for
        # a raw document sent once and whole.
        whole_once = raw and options.copies == 1 and not options.page_ranges
        info = JobInfo(job_id=job.id, job_name=job.name, user=job.user, document_format=fmt,
                       copies=1, host=socket.gethostname()[:31] or "ipp-gateway",
                       data_length=job.document_bytes if whole_once else None)
        sides = 2 if options.duplex else 1

        def progress(done: Progress) -> None:
            # Pages counted are the pages sent. Where the gateway sends the job once per copy,
            # they include every copy; where the printer makes the copies (PostScript
            # NumCopies, PCL &l#X, PCL XL), each page sent is printed `copies_each` times.
            self.store.progress(
                job, impressions=done.pages * done.copies_each,
                sheets=(done.pages + sides - 1) // sides * done.copies_each,
                bytes_sent=done.bytes_sent)

        await transport.start_job(info)
        started = trio.current_time()
        done = await print_document(self.store.spool.document_path(job.id), fmt,
                                    settings.driver, settings.capabilities, options, transport,
                                    progress)
        seconds = trio.current_time() - started
        await transport.end_job()
        if raw:  # pass-through cannot count pages: say at least one was printed
            printed = max(1, job.impressions_completed)
            self.store.progress(job, impressions=printed, sheets=printed,
                                bytes_sent=job.bytes_sent)
        return done.path, seconds

    def _report_attempt(self, job: Job, settings: _JobSettings, *, path: str = "",
                        seconds: float = 0.0, failure: DriverError | None = None) -> None:
        """Tell the bus how this attempt went, before the job moves on (metrics count it)."""
        self.store.report_attempt(
            job, settings.device_uri.scheme, path=path, seconds=seconds,
            failure="" if failure is None else failure.reason or "other",
            device=failure is not None and not isinstance(failure, ConversionError))

    def _forget_job_status(self) -> None:
        """What the job's transport said was about that job (a stalled transfer, say); the
        next status query between jobs says how the device is now."""
        if self._status_from_job:
            self._status_from_job = False
            self._change(status=(frozenset(), ""))

    def _job_done(self, job: Job) -> None:
        self._change(device_reasons=set())  # each came from a failed attempt: the device is back
        if job.state in (JobState.PROCESSING, JobState.PROCESSING_STOPPED):
            self.store.transition(job, JobEvent.COMPLETE, "job-completed-successfully",
                                  message="Completed.")
            log.info("printer %s: job %d: completed", self.name, job.id)

    def _apply_failure(self, job: Job, failure: DriverError) -> Outcome | None:
        """The failure policy: what each outcome does to the job and the printer."""
        outcome = failure.outcome
        log.warning("printer %s: job %d: %s (outcome %s)", self.name, job.id, failure.message,
                    outcome.value)
        if job.state.is_terminal:
            return None
        if isinstance(failure, FormatRefused) and job.id not in self._resend_driver:
            fallback = _fallback_driver(failure, self._resend_driver.get(job.id, self.driver))
            if fallback is not None:
                self._resend_driver[job.id] = fallback
                message = (f"The device does not take what {self.driver.name} makes: "
                           f"converting with {fallback.name} and sending again.")
                log.warning("printer %s: job %d: %s", self.name, job.id, message)
                self.store.transition(job, JobEvent.REQUEUE, "job-queued", message=message)
                return Outcome.RETRY_CURRENT
        if outcome is Outcome.CANCEL:
            reason = "document-format-error" if isinstance(failure, ConversionError) else (
                "aborted-by-system")
            self.store.transition(job, JobEvent.ABORT, reason, message=failure.message)
            return None
        if outcome is Outcome.HOLD:
            self.store.transition(job, JobEvent.REQUEUE)
            # hold_until as Hold-Job leaves it: Release-Job lets it print.
            self.store.transition(job, JobEvent.HOLD, "job-hold-until-specified",
                                  message=failure.message, hold_until="indefinite")
            return None
        if outcome is Outcome.STOP_PRINTER:
            self.store.transition(job, JobEvent.REQUEUE, "printer-stopped", "job-queued",
                                  message=failure.message)
            self.stopped_by_device = True
            reason = failure.reason + "-error" if failure.reason else "other-error"
            self._change(PrinterState.STOPPED, failure.message,
                         device_reasons=self.device_reasons | {reason})
            return None
        self.store.transition(job, JobEvent.REQUEUE, "job-queued", message=failure.message)
        self._retry_message = f"Waiting for the device: {failure.message}"
        self._change(PrinterState.PROCESSING, self._retry_message,
                     device_reasons=self.device_reasons | {_waiting_reason(failure.reason)})
        return outcome

    async def _abort_quietly(self, job: Job, transport: Transport) -> None:
        with trio.CancelScope(shield=True), trio.move_on_after(ABORT_GRACE):
            try:
                await transport.abort_job()
            except DriverError as failure:
                log.warning("printer %s: job %d: abort: %s", self.name, job.id, failure.message)


# What each converting driver sends, as it appears in document-format-supported.
_DRIVER_OUTPUT = {"postscript": "postscript", "postscript2": "postscript",
                  "pclxl": "pclxl", "pcl5": "hp-pcl"}
_PASSED_THROUGH = ("application/pdf", "image/pwg-raster", "image/urf")


def _fallback_driver(failure: FormatRefused, used: Driver) -> Driver | None:
    """The driver to convert a refused job with once more: chosen from the device's formats
    as set-up chooses (drivers.ippcaps), leaving out what was refused; None when the device
    lists nothing else we can make (the job is then aborted as refused)."""
    refused = _DRIVER_OUTPUT.get(used.name)
    left = [fmt for fmt in failure.accepted
            if not (fmt.lower().startswith(_PASSED_THROUGH) if used.passes_through
                    else refused is not None and refused in fmt.lower())]
    choice = choose_ipp_driver(left)
    if not choice.language or choice.driver in (used.name, "raw"):
        return None
    return get_driver(choice.driver)


def _waiting_reason(reason: str) -> str:
    """The printer-state-reasons keyword shown while a job waits to retry after `reason`."""
    if reason in ("", "connecting-to-device"):
        return "connecting-to-device"  # as CUPS and PAPPL show it, without a severity suffix
    return reason + "-report"
