"""The printer worker's failure policy on Trio's autojump clock: the backoff between retries,
what each `Outcome` does to the job and the printer, and the operator's way out of each.

A real System on a tmp spool runs its printer worker against a scripted device (the
`policytest` transport below, registered for each test only): each attempt takes the next
entry of the device's script, a failure to raise or None to accept. Times are virtual
(trio.current_time()), so a 60 s backoff costs nothing, and every assertion on time is exact.
"""

from __future__ import annotations

import itertools
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio
import trio.testing
from trio.testing import MockClock

from drivers import (
    DeviceStatus,
    DeviceUri,
    DriverError,
    JobInfo,
    Outcome,
    Transport,
    TransportError,
)
from drivers import transport as transport_module
from gateway.config import Config, PrinterConfig
from gateway.core.events import (
    Event,
    JobAttempt,
    JobCompleted,
    JobProgress,
    JobStateChanged,
    PrinterStateChanged,
    job_id_of,
)
from gateway.core.job import Job
from gateway.core.printer import Printer
from gateway.core.spool import SpoolBatch
from gateway.core.system import PRINT_PATH, System
from gateway.server.operation_table import dispatch
from gateway.server.operations import Endpoint
from ippwire.enums import JobState, Operation, PrinterState, Status, ValueTag
from ippwire.reader import decode_message
from ippwire.writer import encode_message, request

SCHEME = "policytest"
PRINTER = "p"
DOCUMENT = b"%!PS-Adobe-3.0\n(policy) show showpage\n"
GUARD = 1000.0  # virtual seconds: a wait that should end sooner fails the test, at no cost


# -- the scripted device ----------------------------------------------------------------------

@dataclass(frozen=True)
class Attempt:
    at: float  # virtual time of start_job
    job_id: int


class Device:
    """What the printer's transport talks to; one per test, named by the device URI's host."""

    def __init__(self) -> None:
        self.script: list[DriverError | None] = []  # per attempt; exhausted = accept
        self.status: DeviceStatus | None = None  # what query_status answers
        self.attempts: list[Attempt] = []
        self.printed: list[tuple[int, bytes]] = []  # (job id, bytes) of each accepted job
        self.aborts = 0
        self._changed = trio.Event()

    def notify(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def until(self, done: Callable[[], bool]) -> None:
        """Wait for the device to see what `done` asks, then for the worker to settle."""
        with trio.fail_after(GUARD):
            while not done():
                await self._changed.wait()
        await trio.testing.wait_all_tasks_blocked()

    async def until_attempts(self, count: int) -> None:
        await self.until(lambda: len(self.attempts) >= count)

    async def until_printed(self, count: int) -> None:
        await self.until(lambda: len(self.printed) >= count)

    def attempted_jobs(self) -> list[int]:
        return [a.job_id for a in self.attempts]

    def gaps(self) -> list[float]:
        return [b.at - a.at for a, b in itertools.pairwise(self.attempts)]


_DEVICES: dict[str, Device] = {}
_device_ids = itertools.count(1)


def _read(path: Path) -> bytes:
    # Read on the Trio thread on purpose: a worker thread would let the autojump clock move
    # while it runs, and the times asserted here would no longer be exact.
    return path.read_bytes()


class ScriptedTransport(Transport):
    scheme = SCHEME

    def __init__(self, uri: DeviceUri) -> None:
        super().__init__(uri)
        self.device = _DEVICES[uri.host]
        self.job: JobInfo | None = None
        self.data = bytearray()

    async def start_job(self, job: JobInfo) -> None:
        await trio.lowlevel.checkpoint()
        device = self.device
        device.attempts.append(Attempt(trio.current_time(), job.job_id))
        device.notify()
        failure = device.script.pop(0) if device.script else None
        if failure is not None:
            raise failure
        self.job = job

    async def send_all(self, data: bytes | bytearray | memoryview) -> None:
        await trio.lowlevel.checkpoint()
        self.data += data

    async def send_file(self, path: Path, on_sent: Callable[[int], None]) -> None:
        data = _read(path)
        await self.send_all(data)
        on_sent(len(data))

    async def end_job(self) -> None:
        await trio.lowlevel.checkpoint()
        assert self.job is not None
        self.device.printed.append((self.job.job_id, bytes(self.data)))
        self.device.notify()

    async def abort_job(self) -> None:
        await trio.lowlevel.checkpoint()
        self.device.aborts += 1

    async def query_status(self) -> DeviceStatus | None:
        await trio.lowlevel.checkpoint()
        return self.device.status


@pytest.fixture(autouse=True)
def _scripted_scheme(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # Registered for each test and taken out after it (register_transport has no undo), so
    # no other test that lists the known schemes ever sees this one.
    transport_module.known_schemes()  # the built-in ones first, into the same table
    monkeypatch.setitem(transport_module._REGISTRY, SCHEME, ScriptedTransport)
    yield
    _DEVICES.clear()


# -- a system printing to it ------------------------------------------------------------------

def _system(tmp_path: Path, *, status_interval: float = 0.0) -> tuple[System, Device]:
    name = f"device{next(_device_ids)}"
    device = _DEVICES[name] = Device()
    config = Config(spool=tmp_path / "spool", printers=(
        PrinterConfig(PRINTER, f"{SCHEME}://{name}/", status_interval=status_interval),))
    system = System(config)
    system.store.run_blocking = _write_inline
    return system, device


async def _write_inline(write: Callable[[SpoolBatch], None], batch: SpoolBatch) -> None:
    # The spool's writes, inline: a worker thread would let the autojump clock move while
    # it runs (see _read), and the times asserted here would no longer be exact.
    write(batch)


def _printer(system: System) -> Printer:
    return system.printers[PRINTER]


async def _queue(system: System, data: bytes = DOCUMENT) -> Job:
    """A job as Print-Job leaves it: created, its document spooled, then queued."""
    job = system.create_job(_printer(system), name="policy", user="test", template={},
                            document_format="application/octet-stream")
    file = system.spool.open_document(job.id)
    file.write(data)
    system.spool.finish_document(file)
    system.store.update(job, has_document=True, document_bytes=len(data))
    await system.queue_job(job)
    return job


@asynccontextmanager
async def _running(system: System) -> AsyncIterator[None]:
    async with trio.open_nursery() as nursery:
        await nursery.start(system.run)
        yield
        nursery.cancel_scope.cancel()


async def _operate(system: System, operation: Operation, job: Job | None = None) -> None:
    """An operator's IPP request, through the codec and `dispatch` as the server sees it."""
    attrs = {} if job is None else {"job-id": (ValueTag.INTEGER, job.id)}
    message = request(operation, printer_uri=f"ipp://localhost:8631{PRINT_PATH}/{PRINTER}",
                      attrs=attrs)
    decoded, _ = decode_message(encode_message(message))

    async def no_document() -> AsyncGenerator[bytes, None]:
        return
        yield

    local = Endpoint("localhost", 8631, client="127.0.0.1:40000")  # an administrator
    reply, _ = decode_message(await dispatch(system, local, decoded, no_document))
    assert reply.code == Status.OK, reply


def _refused(message: str, reason: str = "") -> DriverError:
    return TransportError(message, Outcome.RETRY, reason=reason)


def _assert_idle(printer: Printer) -> None:
    assert (printer.state, printer.state_reasons, printer.message) == (
        PrinterState.IDLE, ["none"], "Ready.")


# -- RETRY ------------------------------------------------------------------------------------

async def test_retry_waits_out_the_backoff_then_prints_once(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    system, device = _system(tmp_path)
    printer = _printer(system)
    device.script = [_refused("connection refused"),
                     *[_refused("the device is offline", "offline") for _ in range(6)]]
    job = await _queue(system)
    async with _running(system):
        start = trio.current_time()
        await device.until_attempts(1)
        # While it waits: the job is queued again, the printer says why and what it waits for.
        assert (job.state, job.reasons) == (JobState.PENDING, ["job-queued"])
        assert job.message == "connection refused"
        assert printer.state is PrinterState.PROCESSING
        assert printer.state_reasons == ["connecting-to-device"]
        assert printer.message == "Waiting for the device: connection refused"
        for attempt in range(2, 8):
            await device.until_attempts(attempt)
            assert (job.state, job.reasons) == (JobState.PENDING, ["job-queued"])
            assert printer.state is PrinterState.PROCESSING
            assert "offline-report" in printer.state_reasons
            assert printer.message == "Waiting for the device: the device is offline"
        await device.until_printed(1)
        assert (job.state, job.reasons) == (JobState.COMPLETED, ["job-completed-successfully"])
        _assert_idle(printer)
        await trio.sleep(600)  # nothing more happens: the job is done, once
    assert device.attempts[0].at == start  # the first attempt goes at once
    assert device.gaps() == [1, 2, 5, 10, 30, 60, 60]  # then the backoff, capped at 60 s
    assert device.printed == [(job.id, DOCUMENT)] and len(device.attempts) == 8
    assert job.attempts == 8 and device.aborts == 7  # each failed transport was closed
    assert not system.spool.document_path(job.id).exists()


async def test_backoff_starts_over_after_the_device_accepts(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    system, device = _system(tmp_path)
    device.script = [_refused("connection refused")] * 3 + [None] + [_refused("timed out")]
    first, second = await _queue(system), await _queue(system)
    async with _running(system):
        await device.until_printed(2)
    assert device.attempted_jobs() == [first.id] * 4 + [second.id] * 2
    assert device.gaps()[:3] == [1, 2, 5]
    assert device.gaps()[4] == 1  # the next failure waits 1 s again, not 10
    assert [job_id for job_id, _ in device.printed] == [first.id, second.id]
    assert first.state is second.state is JobState.COMPLETED


async def test_status_shown_while_a_job_waits_to_retry(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    system, device = _system(tmp_path, status_interval=5)
    printer = _printer(system)
    device.status = DeviceStatus(frozenset({"media-empty"}), "Load paper in tray 2.")
    device.script = [_refused("connection refused")] * 5  # waits 1, 2, 5, 10, then 30 s
    job = await _queue(system)
    async with _running(system):
        await device.until_attempts(5)
        await trio.sleep_until(device.attempts[-1].at + 20)  # several status queries later
        assert (job.state, len(device.attempts)) == (JobState.PENDING, 5)
        assert printer.state is PrinterState.PROCESSING
        assert printer.state_reasons == ["connecting-to-device", "media-empty-report"]
        assert printer.message == ("Waiting for the device: connection refused "
                                   "Device: Load paper in tray 2.")
        await device.until_printed(1)
    assert job.state is JobState.COMPLETED


# -- RETRY_CURRENT ----------------------------------------------------------------------------

async def test_retry_current_goes_again_at_once_only_the_first_time(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    system, device = _system(tmp_path)
    hiccup: DriverError = TransportError("connection reset", Outcome.RETRY_CURRENT)
    device.script = [hiccup] * 4 + [None] + [hiccup]
    first, second = await _queue(system), await _queue(system)
    async with _running(system):
        await device.until_printed(2)
    assert device.attempted_jobs() == [first.id] * 5 + [second.id] * 2
    # At once, then the backoff: it does not spin. (It goes on at RETRY_DELAYS[1], not [0].)
    assert device.gaps()[:4] == [0, 2, 5, 10]
    assert device.gaps()[5] == 0  # after a success, "retry now" is honoured at once again
    assert first.state is second.state is JobState.COMPLETED


# -- HOLD -------------------------------------------------------------------------------------

async def test_hold_waits_for_release_and_the_queue_goes_on(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    system, device = _system(tmp_path)
    printer = _printer(system)
    device.script = [TransportError("the job needs manual feed", Outcome.HOLD)]
    held, other = await _queue(system), await _queue(system)
    async with _running(system):
        await device.until_printed(1)  # the next job prints meanwhile
        assert (held.state, held.reasons) == (JobState.PENDING_HELD,
                                              ["job-hold-until-specified"])
        assert held.hold_until == "indefinite" and held.message == "the job needs manual feed"
        assert other.state is JobState.COMPLETED
        _assert_idle(printer)
        await trio.sleep(600)
        assert device.attempted_jobs() == [held.id, other.id]  # held means not retried
        await _operate(system, Operation.RELEASE_JOB, held)
        await device.until_printed(2)
    assert device.attempted_jobs() == [held.id, other.id, held.id]
    assert [job_id for job_id, _ in device.printed] == [other.id, held.id]
    assert held.state is JobState.COMPLETED
    _assert_idle(printer)


# -- STOP_PRINTER -----------------------------------------------------------------------------

@pytest.mark.parametrize(("reason", "shown"), [("media-jam", "media-jam-error"),
                                               ("", "other-error")], ids=["reason", "no-reason"])
async def test_stop_printer_keeps_the_jobs_until_resume(
        tmp_path: Path, autojump_clock: MockClock, reason: str, shown: str) -> None:
    system, device = _system(tmp_path)
    printer = _printer(system)
    device.script = [TransportError("paper jam in tray 1", Outcome.STOP_PRINTER, reason=reason)]
    first, second = await _queue(system), await _queue(system)
    async with _running(system):
        await device.until_attempts(1)
        await trio.sleep(600)
        assert device.attempted_jobs() == [first.id]  # a stopped printer takes no job
        assert (printer.state, printer.state_reasons, printer.message) == (
            PrinterState.STOPPED, [shown], "paper jam in tray 1")
        assert (first.state, first.reasons) == (JobState.PENDING,
                                                ["printer-stopped", "job-queued"])
        assert (second.state, second.reasons) == (JobState.PENDING, ["job-queued"])
        await _operate(system, Operation.RESUME_PRINTER)
        assert "printer-stopped" not in first.reasons  # queued again, or printing already
        await device.until_printed(2)
    assert [job_id for job_id, _ in device.printed] == [first.id, second.id]
    assert first.state is second.state is JobState.COMPLETED
    _assert_idle(printer)


# -- CANCEL -----------------------------------------------------------------------------------

@pytest.mark.parametrize(("document", "failure", "reason"), [
    # A real ConversionError, from the pipeline: an empty document cannot be printed.
    (b"", None, "document-format-error"),
    (DOCUMENT, TransportError("the device refuses this job", Outcome.CANCEL),
     "aborted-by-system"),
], ids=["conversion-error", "transport-cancel"])
async def test_cancel_outcome_aborts_the_job_and_the_next_prints(
        tmp_path: Path, autojump_clock: MockClock, document: bytes, failure: DriverError | None,
        reason: str) -> None:
    system, device = _system(tmp_path)
    device.script = [failure]
    doomed = await _queue(system, document)
    after = await _queue(system)
    async with _running(system):
        await device.until_printed(1)
        await trio.sleep(600)
    assert device.attempted_jobs() == [doomed.id, after.id]  # never retried
    assert (doomed.state, doomed.reasons) == (JobState.ABORTED, [reason])
    assert device.aborts == 1  # the half-started transfer was closed
    assert not system.spool.document_path(doomed.id).exists()
    assert device.printed == [(after.id, DOCUMENT)] and after.state is JobState.COMPLETED
    _assert_idle(_printer(system))


# -- the operator during a backoff -------------------------------------------------------------

async def test_cancel_job_during_a_long_backoff_settles_at_once(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    system, device = _system(tmp_path)
    printer = _printer(system)
    device.script = [_refused("connection refused")] * 6
    job = await _queue(system)
    async with _running(system):
        await device.until_attempts(6)  # now waiting 60 s
        assert device.gaps() == [1, 2, 5, 10, 30]
        canceled_at = trio.current_time()
        await _operate(system, Operation.CANCEL_JOB, job)
        await trio.testing.wait_all_tasks_blocked()
        assert trio.current_time() == canceled_at  # no virtual time passed: not the 60 s
        assert (job.state, job.reasons) == (JobState.CANCELED, ["job-canceled-by-user"])
        _assert_idle(printer)
        await trio.sleep(600)
    assert len(device.attempts) == 6  # and the canceled job is not tried again
    assert not system.spool.document_path(job.id).exists()


async def test_a_new_job_does_not_cut_a_backoff_short(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    system, device = _system(tmp_path)
    device.script = [_refused("connection refused")] * 5  # the fifth waits 30 s
    failing = await _queue(system)
    async with _running(system):
        await device.until_attempts(5)
        await _queue(system)
        await device.until_printed(2)
    assert device.attempted_jobs()[:6] == [failing.id] * 6
    assert device.gaps()[:5] == [1, 2, 5, 10, 30]


# -- paused -----------------------------------------------------------------------------------

async def test_a_paused_printer_prints_nothing_then_the_queue_in_order(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    system, device = _system(tmp_path)
    printer = _printer(system)
    async with _running(system):
        await _operate(system, Operation.PAUSE_PRINTER)
        jobs = [await _queue(system) for _ in range(3)]
        await trio.sleep(600)
        assert device.attempts == []
        assert (printer.state, printer.state_reasons) == (PrinterState.STOPPED, ["paused"])
        assert all(job.state is JobState.PENDING for job in jobs)
        await _operate(system, Operation.RESUME_PRINTER)
        await device.until_printed(3)
    assert [job_id for job_id, _ in device.printed] == [job.id for job in jobs]
    assert all(job.state is JobState.COMPLETED for job in jobs)
    _assert_idle(printer)


# -- the bus: every transition, in order ------------------------------------------------------

P, H, R = JobState.PENDING, JobState.PENDING_HELD, JobState.PROCESSING


def _transitions(events: list[Event], job: Job) -> list[tuple[str, JobState]]:
    """The job's events but progress and attempt reports, as (kind, state); revisions must
    only grow."""
    mine = [e for e in events if job_id_of(e) == job.id]
    revisions = [e.revision for e in mine]
    assert revisions == sorted(set(revisions))
    return [(e.kind, e.job.state) for e in mine  # type: ignore[union-attr]
            if not isinstance(e, JobProgress | JobAttempt)]


async def test_the_bus_sees_a_printed_job_from_created_to_completed(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    system, device = _system(tmp_path)
    with system.bus.subscribe() as subscription:
        job = await _queue(system)
        async with _running(system):
            await device.until_printed(1)
        events = subscription.drain()
    assert _transitions(events, job) == [
        ("job-created", H), ("job-state-changed", P), ("job-state-changed", R),
        ("job-completed", JobState.COMPLETED)]
    progress = [e for e in events if isinstance(e, JobProgress)]
    assert progress and progress[-1].job.bytes_sent == len(DOCUMENT)
    states = [e.printer.state for e in events if isinstance(e, PrinterStateChanged)]
    assert states == [PrinterState.PROCESSING, PrinterState.IDLE]


async def test_the_bus_sees_a_job_fail_retry_and_complete(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    system, device = _system(tmp_path)
    device.script = [_refused("connection refused")]
    with system.bus.subscribe() as subscription:
        job = await _queue(system)
        async with _running(system):
            await device.until_printed(1)
        events = subscription.drain()
    assert _transitions(events, job) == [
        ("job-created", H), ("job-state-changed", P), ("job-state-changed", R),
        ("job-state-changed", P), ("job-state-changed", R),
        ("job-completed", JobState.COMPLETED)]
    requeued = [e for e in events if isinstance(e, JobStateChanged) and e.previous is R]
    assert requeued[0].job.message == "connection refused"
    assert requeued[0].job.reasons == ("job-queued",)


async def test_the_bus_sees_a_canceled_job_end(
        tmp_path: Path, autojump_clock: MockClock) -> None:
    system, device = _system(tmp_path)
    device.script = [_refused("connection refused")]
    with system.bus.subscribe() as subscription:
        job = await _queue(system)
        async with _running(system):
            await device.until_attempts(1)  # now it waits out its backoff
            await _operate(system, Operation.CANCEL_JOB, job)
            await trio.testing.wait_all_tasks_blocked()
        events = subscription.drain()
    assert _transitions(events, job) == [
        ("job-created", H), ("job-state-changed", P), ("job-state-changed", R),
        ("job-state-changed", P), ("job-completed", JobState.CANCELED)]
    assert not device.printed
    (completed,) = [e for e in events if isinstance(e, JobCompleted)]
    assert completed.job.reasons == ("job-canceled-by-user",)
    assert completed.previous is P  # canceled while it waited out its backoff
