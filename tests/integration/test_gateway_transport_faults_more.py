"""Issue 3 at the gateway level, the slow faults: an LPD server that acknowledges slowly, a
serial printer holding XOFF, a port-9100 printer off the network for a full minute.

Each test runs a gateway process whose one printer points at the misbehaving peer and watches
it over IPP while the job waits: the printer shows processing (and why it waits), every
Get-Printer-Attributes is answered without waiting for the device, and once the peer is
healthy the document arrives byte-exact, exactly once.
"""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
import trio

from drivers.testing import payload
from ippwire.enums import JobState, PrinterState
from tests.peers.gateway_proc import GatewayProcess
from tests.peers.p910nd import P910nd, running_p910nd
from tests.support.device_gateway import (
    PRINTER,
    STATUS_INTERVAL,
    cancel_and_time,
    gateway_for,
    job_now,
    until_job,
)
from tests.support.fake_lpd import FakeLpd, LpdFaults
from tests.support.ipp_client import StateSnapshot, printer_status, submit
from tests.support.serial_pty import PtyPrinter, running_pty_printer
from tests.support.serving import serving

pytestmark = pytest.mark.peers

WAITING = (JobState.PENDING, JobState.PROCESSING)


@dataclass
class PrinterWatch:
    """Get-Printer-Attributes answers seen while a job waited on its device."""

    snapshots: list[StateSnapshot] = field(default_factory=list)
    slowest: float = 0.0  # seconds, the longest a request took to be answered

    async def look(self, gateway: GatewayProcess) -> StateSnapshot:
        started = time.monotonic()
        with trio.fail_after(5):
            snapshot = await trio.to_thread.run_sync(partial(printer_status, gateway.port,
                                                             PRINTER, timeout=5.0))
        self.slowest = max(self.slowest, time.monotonic() - started)
        self.snapshots.append(snapshot)
        return snapshot

    def summary(self) -> str:
        return f"{len(self.snapshots)} answers, slowest {self.slowest * 1000:.0f} ms"


async def submit_job(gateway: GatewayProcess, data: bytes) -> int:
    return await trio.to_thread.run_sync(partial(submit, gateway.port, data, printer=PRINTER,
                                                 name="slow fault", user="ursula"))


async def idle_printer(gateway: GatewayProcess) -> StateSnapshot:
    return await PrinterWatch().look(gateway)


# -- LPD: every acknowledgment late ------------------------------------------------------------

ACK_DELAY = 1.5


@pytest.fixture
async def slow_lpd() -> AsyncIterator[FakeLpd]:
    async with serving(FakeLpd(LpdFaults(ack_delay=ACK_DELAY))) as peer:
        yield peer


async def test_slow_lpd_acks_print_once_while_the_gateway_answers(
    slow_lpd: FakeLpd, tmp_path: Path
) -> None:
    data = payload(300_000, 11)
    watch = PrinterWatch()
    async with gateway_for(tmp_path, slow_lpd.uri, STATUS_INTERVAL) as gateway:
        job_id = await submit_job(gateway, data)
        started = time.monotonic()
        with trio.fail_after(60):
            while (job := await job_now(gateway, job_id)).state in WAITING:
                printer = await watch.look(gateway)
                # The job was printing before and after this answer (it is printed once,
                # checked below), so the printer was busy with it when it answered.
                if (await job_now(gateway, job_id)).state == JobState.PROCESSING:
                    assert printer.state == PrinterState.PROCESSING, printer
                    assert printer.reasons == ("none",), printer
                await trio.sleep(0.1)
        took = time.monotonic() - started
        assert job.state == JobState.COMPLETED, job
        assert gateway.attempts(job_id) == 1
        idle = await idle_printer(gateway)
        assert (idle.state, idle.reasons) == (PrinterState.IDLE, ("none",)), idle
    waits = sorted({s.message for s in watch.snapshots if "waiting" in s.message})
    print(f"slow lpd ({ACK_DELAY:g} s per ack): job completed {took:.1f} s after Print-Job; "
          f"{watch.summary()}; {waits}")
    # While the job waited, the printer said on what (its own transport, no second connection).
    assert any(message.startswith(f"Printing job {job_id}.") and " ack" in message
               for message in waits), waits
    [delivered] = slow_lpd.jobs
    assert delivered.complete and not delivered.aborted and bytes(delivered.data) == data
    assert delivered.acks == 5  # receive-job, 2 x (subcommand, file): every one was slow
    assert took >= 5 * ACK_DELAY  # the job really waited on the acknowledgments
    # No answer waited for the device: each took less than one acknowledgment's delay.
    assert len(watch.snapshots) >= 10 and watch.slowest < ACK_DELAY


# -- serial: XOFF held, then XON ---------------------------------------------------------------

XOFF_HOLD = 3.0


@pytest.fixture
async def pty_printer() -> AsyncIterator[PtyPrinter]:
    async with running_pty_printer() as peer:
        yield peer


async def test_serial_xoff_holds_the_job_then_xon_delivers_it_once(
    pty_printer: PtyPrinter, tmp_path: Path
) -> None:
    data = payload(300_000, 12)
    uri = f"serial:{pty_printer.device}?baud=9600&flow=soft"
    watch = PrinterWatch()
    async with gateway_for(tmp_path, uri) as gateway:
        pty_printer.xoff()
        await trio.sleep(0.05)
        job_id = await submit_job(gateway, data)
        await until_job(gateway, job_id, JobState.PROCESSING, timeout=10)
        held_until = trio.current_time() + XOFF_HOLD
        while trio.current_time() < held_until:
            printer = await watch.look(gateway)
            assert printer.state == PrinterState.PROCESSING, printer
            assert (await job_now(gateway, job_id)).state == JobState.PROCESSING
            await trio.sleep(0.1)
        held = pty_printer.total
        # The printer said why it waited: busy, from the job's own serial port (not offline:
        # that takes 10 s of XOFF, as a busy printer holds it for seconds at a time).
        busy = [s for s in watch.snapshots if "printer busy (flow control)" in s.message]
        assert busy and all(s.reasons == ("none",) for s in busy), watch.snapshots[-1]
        assert held < len(data)  # the printer said stop, and the gateway stopped
        pty_printer.xon()
        await until_job(gateway, job_id, JobState.COMPLETED, timeout=30)
        assert gateway.attempts(job_id) == 1
        idle = await idle_printer(gateway)
        assert (idle.state, idle.reasons) == (PrinterState.IDLE, ("none",)), idle
    received = await pty_printer.take()
    print(f"serial XOFF held {XOFF_HOLD:g} s: {held} of {len(data)} bytes passed meanwhile; "
          f"printer {sorted({s.message for s in watch.snapshots})}; {watch.summary()}")
    assert received == data and pty_printer.total == len(data)
    assert len(watch.snapshots) >= 10


def holds_device(pid: int, device: str) -> bool:
    """Whether process `pid` has `device` open (a descriptor in /proc/PID/fd points at it)."""
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            if os.readlink(fd) == device:
                return True
        except OSError:  # closed meanwhile
            continue
    return False


async def test_cancel_job_stops_a_serial_transfer_held_by_xoff(
    pty_printer: PtyPrinter, tmp_path: Path
) -> None:
    """XOFF held: the job waits on flow control mid-transfer. Cancel-Job makes it show canceled
    and the gateway close the serial port within a second; after XON the next job prints
    alone (nothing of the canceled job follows it)."""
    data = payload(300_000, 15)
    uri = f"serial:{pty_printer.device}?baud=9600&flow=soft"
    async with gateway_for(tmp_path, uri) as gateway:
        pty_printer.xoff()
        await trio.sleep(0.05)
        job_id = await submit_job(gateway, data)
        await until_job(gateway, job_id, JobState.PROCESSING, timeout=10)
        with trio.fail_after(5):
            while not holds_device(gateway.pid, pty_printer.device):  # noqa: ASYNC110 - /proc of the gateway
                await trio.sleep(0.01)
        await trio.sleep(0.5)  # the transfer waits on XOFF now
        assert pty_printer.total < len(data)
        times = await cancel_and_time(
            gateway, job_id, lambda: holds_device(gateway.pid, pty_printer.device))
        print(f"serial cancel: job canceled {times.canceled * 1000:.0f} ms, port closed "
              f"{times.closed * 1000:.0f} ms after the Cancel-Job response")
        times.check()
        before = await pty_printer.take()
        assert len(before) < len(data)
        pty_printer.xon()
        next_id = await submit_job(gateway, b"next job")
        await until_job(gateway, next_id, JobState.COMPLETED, timeout=10)
        idle = await idle_printer(gateway)
        assert (idle.state, idle.reasons) == (PrinterState.IDLE, ("none",)), idle
        assert gateway.attempts(job_id) == 1
    assert await pty_printer.take() == b"next job"


# -- port 9100: p910nd off the network for a minute --------------------------------------------

DOWN_FOR = 60.0
BACK_WITHIN = 150.0  # the retry delays add up to 48 s, then 60 s per attempt


@pytest.fixture
def p910nd_server() -> Iterator[P910nd]:
    with running_p910nd(hash_only=True) as server:
        yield server


async def watch_while_down(gateway: GatewayProcess, job_ids: list[int], down_since: float,
                           watch: PrinterWatch) -> None:
    """Poll the printer until the peer has been down DOWN_FOR seconds: once the first attempt
    failed, it must stay processing and say it is connecting to the device."""
    failed = False
    while time.monotonic() - down_since < DOWN_FOR:
        printer = await watch.look(gateway)
        failed = failed or "connecting-to-device" in printer.reasons
        if failed:
            assert printer.state == PrinterState.PROCESSING, printer
            assert "connecting-to-device" in printer.reasons, printer
        for job_id in job_ids:
            assert (await job_now(gateway, job_id)).state in WAITING
        await trio.sleep(0.5)


@pytest.mark.slow
async def test_p910nd_down_for_a_minute_then_back_delivers_once(
    p910nd_server: P910nd, tmp_path: Path
) -> None:
    documents = [payload(1024 * 1024, 13), payload(200_000, 14)]
    await trio.to_thread.run_sync(p910nd_server.stop_daemon)
    down_since = time.monotonic()
    watch = PrinterWatch()
    with trio.fail_after(DOWN_FOR + BACK_WITHIN):
        async with gateway_for(tmp_path, p910nd_server.uri + "?contimeout=2") as gateway:
            first = await submit_job(gateway, documents[0])
            await trio.sleep(5)
            second = await submit_job(gateway, documents[1])  # accepted while waiting
            await watch_while_down(gateway, [first, second], down_since, watch)
            await trio.to_thread.run_sync(p910nd_server.start_daemon)
            back = time.monotonic()
            await until_job(gateway, first, JobState.COMPLETED, timeout=BACK_WITHIN - DOWN_FOR)
            delivered_after = time.monotonic() - back
            await until_job(gateway, second, JobState.COMPLETED, timeout=30)
            tries = gateway.attempts(first), gateway.attempts(second)
            idle = await idle_printer(gateway)
            assert (idle.state, idle.reasons) == (PrinterState.IDLE, ("none",)), idle
    p910nd_server.wait_record(2)
    records = p910nd_server.records()
    print(f"p910nd down {DOWN_FOR:g} s: first job delivered {delivered_after:.1f} s after it "
          f"came back, attempts {tries}; while down {watch.summary()}")
    assert [r.sha256 for r in records] == [hashlib.sha256(d).hexdigest() for d in documents]
    assert tries[1] == 1 and tries[0] >= 6  # 1+2+5+10+30 s of backoff fit inside the minute
    assert len(watch.snapshots) >= 60
