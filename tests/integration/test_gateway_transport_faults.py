"""Issue 3 at the gateway level: device faults and Cancel-Job, seen over IPP.

Each test runs a gateway process whose printer points at a misbehaving peer (fault-injecting
LPD and port-9100 peers in this process, p910nd taken down and brought back). Over IPP the
printer shows why it waits while the job is retried with backoff, Get-Printer-Attributes keeps
being answered, and once the peer is healthy the job arrives exactly once.
"""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import partial
from itertools import pairwise
from pathlib import Path

import pytest
import trio

from drivers.testing import payload
from ippwire.enums import JobState, PrinterState
from tests.peers.gateway_proc import GatewayProcess
from tests.peers.p910nd import P910nd, running_p910nd
from tests.support.big_job import sha256_file
from tests.support.device_gateway import (
    PRINTER,
    STATUS_INTERVAL,
    CancelTimes,
    cancel_and_time,
    gateway_for,
    job_now,
    printer_now,
    until_job,
)
from tests.support.fake_lpd import FakeLpd, LpdFaults
from tests.support.fake_socket import FakeSocketPeer, SocketFaults
from tests.support.ipp_client import StateSnapshot, cancel, submit
from tests.support.serving import serving
from tests.support.stall_peer import TCP_ESTABLISHED, StallingPeer, sender_state

pytestmark = pytest.mark.peers


@dataclass
class RetryWatch:
    """What Get-Printer-Attributes showed while the job waited for the device."""

    answers: int = 0
    waiting: StateSnapshot | None = None  # one showing the failure, between two attempts


async def watch_retries(gateway: GatewayProcess, job_id: int, reason: str,
                        failures: int) -> RetryWatch:
    """Poll the printer until the job's attempt number `failures` has failed (printing is
    retried with backoff); while it waits, the printer must show `reason` and stay processing."""
    watch = RetryWatch()
    with trio.fail_after(20):
        while True:
            # An attempt logs its start after showing "Printing job N.": a "Waiting" seen
            # after reading the log comes from the failure of the last attempt logged or later.
            started = gateway.attempts(job_id)
            snapshot = await printer_now(gateway)
            watch.answers += 1
            if reason in snapshot.reasons:  # between attempts, and during the next one
                assert snapshot.state == PrinterState.PROCESSING, snapshot
                if snapshot.message.startswith("Waiting for the device"):
                    watch.waiting = snapshot
                    if started >= failures:
                        return watch
            await trio.sleep(0.05)


@dataclass(frozen=True)
class Fault:
    reason: str  # the printer-state-reasons keyword while the job waits
    detail: str  # a regex the printer-state-message matches meanwhile


async def check_fault_then_recovery(
    gateway: GatewayProcess, data: bytes, fault: Fault, heal: Callable[[], Awaitable[None]],
    delivered: Callable[[], Sequence[bytes | str]], expected: bytes | str,
) -> None:
    """Submit `data`; two attempts fail with `fault`; after `heal` it arrives once."""
    job_id = await trio.to_thread.run_sync(partial(submit, gateway.port, data, printer=PRINTER,
                                                   name="fault test", user="ursula"))
    watch = await watch_retries(gateway, job_id, fault.reason, failures=2)
    job = await job_now(gateway, job_id)
    assert job.state in (JobState.PENDING, JobState.PROCESSING), job
    assert watch.waiting is not None and re.search(fault.detail, watch.waiting.message), watch
    assert watch.answers >= 5  # answered all along
    await heal()
    await until_job(gateway, job_id, JobState.COMPLETED, timeout=15)
    assert gateway.attempts(job_id) == 3
    assert list(delivered()) == [expected]
    idle = await printer_now(gateway)
    assert (idle.state, idle.reasons) == (PrinterState.IDLE, ("none",)), idle


# -- LPD: refused, dropped mid-data file -------------------------------------------------------


@pytest.mark.parametrize(
    ("faults", "fault"),
    [(LpdFaults(refuse_receive=1), Fault("other-report", r"refused the receive-job .*ack 0x01")),
     (LpdFaults(drop_after=100_000),
      Fault("offline-report", "connection lost|closed the connection"))],
    ids=["refused", "dropped-mid-data"],
)
async def test_lpd_fault_is_retried_and_the_job_arrives_once(
    fake_lpd: FakeLpd, tmp_path: Path, faults: LpdFaults, fault: Fault
) -> None:
    fake_lpd.faults = faults
    data = payload(400_000, 3)

    async def heal() -> None:
        fake_lpd.faults = LpdFaults()

    def delivered() -> list[bytes]:
        return [bytes(job.data) for job in fake_lpd.completed]

    # Status polling on: the remote queue answers while the job waits, and must not make the
    # printer look idle meanwhile.
    async with gateway_for(tmp_path, fake_lpd.uri, STATUS_INTERVAL) as gateway:
        await check_fault_then_recovery(gateway, data, fault, heal, delivered, data)
    assert len(fake_lpd.jobs) == 3 and fake_lpd.queue_requests


async def test_lpd_queue_state_shows_while_a_job_waits_to_retry(
    fake_lpd: FakeLpd, tmp_path: Path
) -> None:
    """The remote queue is asked on the status timer while a refused job waits out its
    backoff: what it says (a jam here) reaches printer-state-reasons and -message over IPP."""
    fake_lpd.faults = LpdFaults(refuse_receive=1,
                                queue_state=b"gwtest: paper jam in tray 2\nno entries\n")
    data = payload(50_000, 5)
    async with gateway_for(tmp_path, fake_lpd.uri, STATUS_INTERVAL) as gateway:
        job_id = await trio.to_thread.run_sync(partial(submit, gateway.port, data,
                                                       printer=PRINTER, name="jammed"))
        with trio.fail_after(20):
            while True:
                snapshot = await printer_now(gateway)
                if "paper jam in tray 2" in snapshot.message:
                    break
                await trio.sleep(0.05)
        assert snapshot.message.startswith("Waiting for the device"), snapshot
        assert "media-jam-report" in snapshot.reasons, snapshot
        assert (await job_now(gateway, job_id)).state in (JobState.PENDING, JobState.PROCESSING)
        fake_lpd.faults = LpdFaults()
        await until_job(gateway, job_id, JobState.COMPLETED, timeout=30)
    assert [bytes(job.data) for job in fake_lpd.completed] == [data]


# -- port 9100: closed mid-job; p910nd down, then back -----------------------------------------


@pytest.fixture
async def fake_socket() -> AsyncIterator[FakeSocketPeer]:
    async with serving(FakeSocketPeer()) as peer:
        yield peer


async def test_socket_closed_mid_job_is_retried_and_arrives_once(
    fake_socket: FakeSocketPeer, tmp_path: Path
) -> None:
    fake_socket.faults = SocketFaults(close_after=1024 * 1024)
    data = payload(8 * 1024 * 1024, 4)  # more than the socket buffers hold

    async def heal() -> None:
        fake_socket.faults = SocketFaults()

    async with gateway_for(tmp_path, fake_socket.uri) as gateway:
        lost = Fault("offline-report", "connection lost")
        await check_fault_then_recovery(gateway, data, lost, heal,
                                        lambda: fake_socket.complete_jobs, data)


async def test_cancel_while_waiting_to_retry_settles_the_printer(
    fake_socket: FakeSocketPeer, tmp_path: Path
) -> None:
    fake_socket.down()
    async with gateway_for(tmp_path, fake_socket.uri) as gateway:
        job_id = await trio.to_thread.run_sync(partial(submit, gateway.port, b"never printed",
                                                       printer=PRINTER))
        await watch_retries(gateway, job_id, "connecting-to-device", failures=3)
        started = gateway.attempt_times(job_id)
        gaps = [(b - a).total_seconds() for a, b in pairwise(started)]
        assert gaps[0] >= 0.9 and gaps[1] >= 1.9  # backoff: 1 s, then 2 s (then 5 s, ...)
        await trio.to_thread.run_sync(cancel, gateway.port, job_id, PRINTER)
        answered = time.monotonic()
        with trio.fail_after(3):  # well inside the 5 s backoff now running
            while (await printer_now(gateway)).reasons != ("none",):  # noqa: ASYNC110 - the gateway, over IPP
                await trio.sleep(0.02)
        print(f"printer settled {(time.monotonic() - answered) * 1000:.0f} ms after Cancel-Job")
        assert (await printer_now(gateway)).state == PrinterState.IDLE
        assert (await job_now(gateway, job_id)).state == JobState.CANCELED
        assert len(gateway.attempt_times(job_id)) == 3
    assert not fake_socket.connections


@pytest.fixture(scope="module")
def p910nd() -> Iterator[P910nd]:
    with running_p910nd(hash_only=True) as server:
        yield server


async def test_p910nd_down_then_back_delivers_once(p910nd: P910nd, tmp_path: Path) -> None:
    document = tmp_path / "job.prn"
    document.write_bytes(payload(2 * 1024 * 1024, 5))
    digest = sha256_file(document)
    first = len(p910nd.records()) + 1
    await trio.to_thread.run_sync(p910nd.stop_daemon)

    async def back() -> None:
        await trio.to_thread.run_sync(p910nd.start_daemon)

    def delivered() -> list[str]:
        p910nd.wait_record(first)
        return [record.sha256 for record in p910nd.records()[first - 1:]]

    async with gateway_for(tmp_path / "gateway", p910nd.uri + "?contimeout=2") as gateway:
        down = Fault("connecting-to-device", "cannot connect")
        await check_fault_then_recovery(gateway, document.read_bytes(), down, back, delivered,
                                        digest)


# -- Cancel-Job in the middle of a transfer ----------------------------------------------------


async def cancel_stalled_job(gateway: GatewayProcess, job_id: int, client_port: int,
                             server_port: int) -> CancelTimes:
    return await cancel_and_time(
        gateway, job_id, lambda: sender_state(client_port, server_port) == TCP_ESTABLISHED)


async def test_cancel_job_stops_a_stalled_socket_transfer(tmp_path: Path) -> None:
    peer = StallingPeer(stall_after=1024 * 1024)
    data = payload(32 * 1024 * 1024, 6)
    async with trio.open_nursery() as nursery:
        await nursery.start(peer.serve)
        async with gateway_for(tmp_path, peer.uri) as gateway:
            job_id = await trio.to_thread.run_sync(partial(submit, gateway.port, data,
                                                           printer=PRINTER))
            with trio.fail_after(10):
                while not peer.connections or peer.connections[0].received < peer.stall_after:  # noqa: ASYNC110 - bytes from the gateway
                    await trio.sleep(0.01)
            await trio.sleep(0.2)  # the sender now waits on a full window
            stalled = peer.connections[0]
            assert sender_state(stalled.client_port, peer.port) == TCP_ESTABLISHED
            times = await cancel_stalled_job(gateway, job_id, stalled.client_port, peer.port)
            peer.drain()  # read what the window held, up to the EOF the close left behind
            with trio.fail_after(5):
                await stalled.done.wait()
            assert stalled.eof_at is not None and stalled.received < len(data)
            print(f"socket cancel: job canceled {times.canceled * 1000:.0f} ms, connection "
                  f"closed {times.closed * 1000:.0f} ms after the Cancel-Job response")
            times.check()
            # The printer goes on: the next job prints (through the now draining peer).
            next_id = await trio.to_thread.run_sync(partial(submit, gateway.port, b"next",
                                                            printer=PRINTER))
            await until_job(gateway, next_id, JobState.COMPLETED, timeout=10)
            assert [c.received for c in peer.connections[1:]] == [4]
        nursery.cancel_scope.cancel()


async def test_cancel_job_stops_a_stalled_lpd_data_file(
    fake_lpd: FakeLpd, tmp_path: Path
) -> None:
    fake_lpd.faults = LpdFaults(stall_after=1024 * 1024)
    data = payload(32 * 1024 * 1024, 7)
    async with gateway_for(tmp_path, fake_lpd.uri) as gateway:
        job_id = await trio.to_thread.run_sync(partial(submit, gateway.port, data,
                                                       printer=PRINTER))
        with trio.fail_after(10):
            while not fake_lpd.jobs or len(fake_lpd.jobs[0].data) < 1024 * 1024:  # noqa: ASYNC110 - bytes from the gateway
                await trio.sleep(0.01)
        await trio.sleep(0.2)
        times = await cancel_stalled_job(gateway, job_id, fake_lpd.jobs[0].source_port,
                                         fake_lpd.port)
        print(f"lpd cancel: job canceled {times.canceled * 1000:.0f} ms, connection "
              f"closed {times.closed * 1000:.0f} ms after the Cancel-Job response")
        times.check()
        idle = await printer_now(gateway)
        assert (idle.state, idle.reasons) == (PrinterState.IDLE, ("none",)), idle
    assert not fake_lpd.completed
