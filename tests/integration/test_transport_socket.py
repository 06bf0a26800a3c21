"""The AppSocket (port 9100) transport against p910nd and against a fault-injecting peer."""

from __future__ import annotations

import hashlib
import socket
import struct
from collections.abc import AsyncIterator, Iterator

import pytest
import trio

from drivers import pjl
from drivers.errors import Outcome, TransportError
from drivers.testing import FailureCase, ReadDelivered, check_transport, payload, send_job
from drivers.transport import JobInfo, open_transport
from drivers.transports import tcp
from drivers.transports.appsocket import AppSocketTransport
from tests.peers.p910nd import P910nd, running_p910nd
from tests.support.big_job import big_file, send_file, watch_rss
from tests.support.fake_socket import FakeSocketPeer, SocketFaults
from tests.support.reset_peer import resetting_peer

pytestmark = pytest.mark.peers


@pytest.fixture(scope="module")
def p910nd_server() -> Iterator[P910nd]:
    with running_p910nd() as server:
        yield server


class Records:
    """Reads p910nd's sink in connection order, as `read_delivered` wants."""

    def __init__(self, server: P910nd) -> None:
        self.server = server
        self.next = len(server.records()) + 1

    async def read(self, job: JobInfo, complete: bool) -> bytes | None:
        path = self.server.jobs_dir / f"job-{self.next:04d}.json"
        with trio.move_on_after(10 if complete else 0.5):
            while not path.exists():  # noqa: ASYNC110 - p910nd's files
                await trio.sleep(0.01)
        if not path.exists():
            return None
        record = self.server.wait_record(self.next)
        self.next += 1
        return record.data.read_bytes() if record.data else None


class PjlRecords(Records):
    """p910nd's records with the `pjl=on` wrapper checked and taken off, so the conformance
    suite compares the job's own bytes (a cancelled job may end with the abort's UEL)."""

    async def read(self, job: JobInfo, complete: bool) -> bytes | None:
        got = await super().read(job, complete)
        header = pjl.job_header(job.job_name, user=job.user)
        if got is None or not got.startswith(header):
            return got  # the suite reports the difference
        got = got[len(header) :]
        footer = pjl.job_footer(job.job_name) if complete else pjl.UEL
        return got[: -len(footer)] if got.endswith(footer) else got


@pytest.fixture
async def peer() -> AsyncIterator[FakeSocketPeer]:
    fake = FakeSocketPeer()
    async with trio.open_nursery() as nursery:
        await nursery.start(fake.serve)
        yield fake
        nursery.cancel_scope.cancel()


# -- p910nd ------------------------------------------------------------------------------------


async def test_p910nd_conformance(p910nd_server: P910nd) -> None:
    records = Records(p910nd_server)

    async def down() -> None:
        await trio.to_thread.run_sync(p910nd_server.stop_daemon)

    async def back() -> None:
        await trio.to_thread.run_sync(p910nd_server.start_daemon)

    offline = FailureCase("printer off", down, back, Outcome.RETRY, reason="connecting-to-device")
    read: ReadDelivered = records.read
    passed = await check_transport(
        lambda: open_transport(p910nd_server.uri + "?contimeout=2"), read, failures=[offline]
    )
    assert len(passed) == 5


async def test_p910nd_conformance_with_pjl_wrapper(p910nd_server: P910nd) -> None:
    read: ReadDelivered = PjlRecords(p910nd_server).read
    passed = await check_transport(
        lambda: open_transport(p910nd_server.uri + "?pjl=on&contimeout=2"), read
    )
    assert len(passed) == 4


@pytest.mark.parametrize("size", [1000, 10 * 1024 * 1024], ids=["1KB", "10MB"])
async def test_p910nd_receives_job_byte_exact(p910nd_server: P910nd, size: int) -> None:
    records = Records(p910nd_server)
    data = payload(size, size)
    await send_job(open_transport(p910nd_server.uri), JobInfo(job_id=5), data)
    record = p910nd_server.wait_record(records.next)
    assert (record.size, record.sha256) == (size, hashlib.sha256(data).hexdigest())


async def test_p910nd_200mb_job_byte_exact_with_flat_memory(p910nd_server: P910nd) -> None:
    records = Records(p910nd_server)
    path, digest = await trio.to_thread.run_sync(big_file)
    async with watch_rss() as memory:
        with trio.fail_after(60):
            await send_file(open_transport(p910nd_server.uri), JobInfo(job_id=200), path)
    record = p910nd_server.wait_record(records.next)
    assert (record.size, record.sha256) == (path.stat().st_size, digest)
    assert memory.growth < 10 * 1024 * 1024


async def test_pjl_job_wrapper(p910nd_server: P910nd) -> None:
    records = Records(p910nd_server)
    data = b"\x1bE PCL bytes \x1bE"
    job = JobInfo(job_id=6, job_name='My "report"', user="erin")
    await send_job(open_transport(p910nd_server.uri + "?pjl=on"), job, data)
    assert await records.read(job, True) == (
        b'\x1b%-12345X@PJL\r\n@PJL JOB NAME="My _report_"\r\n@PJL SET USERNAME="erin"\r\n'
        + data + b'\x1b%-12345X@PJL EOJ NAME="My _report_"\r\n\x1b%-12345X'
    )


# -- faults ------------------------------------------------------------------------------------


async def test_peer_closing_mid_job_means_retry_and_one_copy(peer: FakeSocketPeer) -> None:
    data = payload(8 * 1024 * 1024, 1)  # more than the socket buffers hold
    peer.faults = SocketFaults(close_after=1024 * 1024)
    with pytest.raises(TransportError) as caught:
        await send_job(open_transport(peer.uri), JobInfo(job_id=1), data)
    assert (caught.value.outcome, caught.value.reason) == (Outcome.RETRY, "offline")
    peer.faults = SocketFaults()
    await send_job(open_transport(peer.uri), JobInfo(job_id=1), data)
    assert peer.complete_jobs == [data]


async def test_peer_down_then_back(peer: FakeSocketPeer) -> None:
    data = payload(100_000, 2)
    peer.down()
    attempts, outcomes = 0, []
    async with trio.open_nursery() as nursery:
        with trio.fail_after(10):
            while True:  # the printer worker's loop, with short delays
                attempts += 1
                if attempts == 3:
                    await nursery.start(peer.serve)
                try:
                    await send_job(open_transport(peer.uri + "?contimeout=1"), JobInfo(job_id=2),
                                   data)
                    break
                except TransportError as error:
                    outcomes.append((error.outcome, error.reason))
                    await trio.sleep(0.05)
        nursery.cancel_scope.cancel()
    assert outcomes == [(Outcome.RETRY, "connecting-to-device")] * 2
    assert peer.complete_jobs == [data]


@pytest.mark.parametrize("faults", [SocketFaults(hold_open=True),
                                    SocketFaults(reset_after_eof=True)], ids=["no-eof", "reset"])
async def test_whole_job_accepted_counts_as_printed(
    peer: FakeSocketPeer, faults: SocketFaults
) -> None:
    peer.faults = faults
    transport = open_transport(peer.uri + "?waiteof=0.3")
    await send_job(transport, JobInfo(job_id=3), b"whole job")
    await transport.abort_job()  # nothing left to abort: no second connection either
    assert [bytes(c.data) for c in peer.connections] == [b"whole job"]


async def test_stalled_printer_is_waited_for_and_cancel_is_quick(peer: FakeSocketPeer) -> None:
    peer.faults = SocketFaults(stall_after=100_000)
    transport = open_transport(peer.uri)
    with trio.move_on_after(0.5) as scope:
        await send_job(transport, JobInfo(job_id=4), payload(16 * 1024 * 1024, 4))
    assert scope.cancelled_caught  # still waiting: no timeout by default
    started = trio.current_time()
    await transport.abort_job()
    assert trio.current_time() - started < 1.0
    timed = open_transport(peer.uri + "?timeout=0.3")
    with pytest.raises(TransportError) as caught:
        await send_job(timed, JobInfo(job_id=5), payload(16 * 1024 * 1024, 5))
    assert (caught.value.outcome, caught.value.reason) == (Outcome.RETRY, "timed-out")


@pytest.mark.parametrize(
    ("code", "online", "reasons"),
    [(10001, True, set()), (40021, False, {"door-open-error", "offline-report"}),
     (41302, False, {"media-empty-error", "media-needed-error", "offline-report"}),
     (10006, True, {"toner-low-report"})],
)
async def test_pjl_status_back_channel(
    peer: FakeSocketPeer, code: int, online: bool, reasons: set[str]
) -> None:
    peer.faults = SocketFaults(status_code=code, online=online, display="Panel text")
    transport = open_transport(peer.uri + "?status=pjl")
    idle = await transport.query_status()  # asks over a short connection of its own
    assert idle is not None and set(idle.reasons) == reasons and idle.online is online
    assert idle.message == "Panel text"
    peer.faults = SocketFaults(status_code=10023, display="Printing")
    await transport.start_job(JobInfo(job_id=7, job_name="status"))
    with trio.fail_after(5):
        while (busy := await transport.query_status()) and busy.message != "Printing":
            await transport.send_all(b"data ")
    await transport.end_job()
    assert peer.connections[-1].data.startswith(pjl.UEL)


async def test_status_without_back_channel(peer: FakeSocketPeer) -> None:
    transport = open_transport(peer.uri)
    assert await transport.query_status() is None
    assert isinstance(transport, AppSocketTransport)
    reachable = await transport.check_connection()
    assert reachable.online
    peer.down()
    unreachable = await open_transport(peer.uri + "?contimeout=1").check_connection()  # type: ignore[attr-defined]
    assert not unreachable.online and "offline-report" in unreachable.reasons


@pytest.mark.parametrize("uri", ["socket://", "socket://host?waiteof=maybe", "socket://h?pjl=2"])
def test_bad_uri_stops_the_printer(uri: str) -> None:
    with pytest.raises(TransportError) as caught:
        open_transport(uri)
    assert caught.value.outcome is Outcome.STOP_PRINTER


# -- a reset after the whole job, and during it (a peer outside the test's Trio loop) ----------


async def test_tcp_info_bytes_acked_offset() -> None:
    """tcpi_bytes_acked really sits where tcp.py reads it: after the peer read N bytes, it
    counts them plus our SYN; the peer's tcpi_bytes_received, the next u64, counts N."""
    listeners = await trio.open_tcp_listeners(0, host="127.0.0.1")
    port = listeners[0].socket.getsockname()[1]
    with trio.fail_after(5):
        client = await trio.open_tcp_stream("127.0.0.1", port)
        server = await listeners[0].accept()
        async with listeners[0], client, server:
            assert tcp.bytes_acked(client) == 1  # the SYN
            await client.send_all(b"x" * 100_000)
            got = 0
            while got < 100_000:
                got += len(await server.receive_some(65536))
            while tcp.bytes_acked(client) != 100_001:  # noqa: ASYNC110 - the kernel's ACK count
                await trio.sleep(0.01)
            info = server.socket.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 256)
            assert struct.unpack_from("=Q", info, 128)[0] == 100_000
    assert tcp.tcp_info_bytes_acked(bytes(127)) is None  # a kernel's shorter struct


@pytest.mark.parametrize("options", ["", "?pjl=on"], ids=["raw", "pjl"])
@pytest.mark.parametrize("delay", [0.3, 0.0], ids=["reset-later", "reset-at-once"])
async def test_reset_after_reading_the_whole_job_is_never_a_resend(
    delay: float, options: str
) -> None:
    # At once: the reset follows the last ACK before the sender's next 10 ms poll, which
    # used to see the reset and say RETRY: the job, all of it accepted, printed twice.
    rounds = 5 if delay == 0 else 1
    with resetting_peer(reset_delay=delay) as printer:
        sender = open_transport(printer.uri + options)  # one transport, job after job
        sent = []
        for n in range(rounds):
            job, data = JobInfo(job_id=20 + n, job_name=f"reset {n}"), payload(1024 * 1024, n)
            with trio.fail_after(10):
                await send_job(sender, job, data)  # no TransportError: counted as printed
            wrapped = pjl.job_header(job.job_name, user=job.user) + data + pjl.job_footer(
                job.job_name)
            sent.append(wrapped if options else data)
        received = [await trio.to_thread.run_sync(printer.wait_connection, n)
                    for n in range(rounds)]
        printer.stop()
    assert [c.eof for c in received] == [True] * rounds
    assert [bytes(c.data) for c in received] == sent
    assert len(printer.connections) == rounds  # nothing was sent again


async def test_reset_with_bytes_unread_means_retry() -> None:
    # The peer's small receive buffer keeps most of the job unacknowledged in our queue.
    with resetting_peer(read_limit=1000, rcvbuf=4096, reset_delay=0.3) as printer:
        transport = open_transport(printer.uri)
        data = payload(12_000, 30)
        with trio.fail_after(10):
            await transport.start_job(JobInfo(job_id=30))
            await transport.send_all(data)  # all of it in our send buffer
            with pytest.raises(TransportError) as caught:
                await transport.end_job()
        connection = await trio.to_thread.run_sync(printer.wait_connection, 0)
    assert (caught.value.outcome, caught.value.reason) == (Outcome.RETRY, "offline")
    assert not connection.eof and len(connection.data) < len(data)


async def test_cancel_of_a_stalled_pjl_job_is_quick(peer: FakeSocketPeer) -> None:
    """The issue's budget: Cancel-Job stops a job mid-transfer within a second, `pjl=on`
    included (its UEL cannot go into a full send buffer in time)."""
    peer.faults = SocketFaults(stall_after=100_000)
    transport = open_transport(peer.uri + "?pjl=on")
    for n in range(3):  # whether the UEL still fits varies with the kernel's socket memory
        with trio.move_on_after(0.3) as scope:
            await send_job(transport, JobInfo(job_id=40 + n), payload(16 * 1024 * 1024, n))
        assert scope.cancelled_caught  # stalled in send_all: the buffers are full
        await transport.abort_job()
        assert trio.current_time() - scope.deadline < 1.0  # from the cancel to closed
        with pytest.raises(TransportError):
            await transport.send_all(b"must not be sent")  # closed
    job = JobInfo(job_id=49, job_name="after")
    with trio.fail_after(10):
        await send_job(transport, job, b"next job")
    assert [c.eof for c in peer.connections] == [False, False, False, True]
    header = pjl.job_header("after", user=job.user)
    assert peer.complete_jobs == [header + b"next job" + pjl.job_footer("after")]


@pytest.fixture
def unanswering_port() -> Iterator[int]:
    """A loopback port whose listener never accepts and whose queue is full: the kernel drops
    further SYNs, as a host that is switched off (or firewalled) does."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    port = listener.getsockname()[1]
    filler = socket.create_connection(("127.0.0.1", port))  # takes the one queue slot
    try:
        yield port
    finally:
        filler.close()
        listener.close()


@pytest.mark.parametrize("scheme", ["socket", "lpd"])
async def test_contimeout_gives_up_on_a_host_that_does_not_answer(
    unanswering_port: int, scheme: str
) -> None:
    uri = f"{scheme}://127.0.0.1:{unanswering_port}{'/q' if scheme == 'lpd' else ''}"
    transport = open_transport(f"{uri}?contimeout=0.5")
    start = trio.current_time()
    with pytest.raises(TransportError) as caught:
        await transport.start_job(JobInfo(job_id=1, data_length=10))
    waited = trio.current_time() - start
    assert (caught.value.outcome, caught.value.reason) == (Outcome.RETRY, "connecting-to-device")
    assert "0.5 s" in caught.value.message
    assert 0.45 <= waited < 5  # the setting, not the kernel's own two-minute SYN retries
