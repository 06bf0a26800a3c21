"""The LPD transport against a real BSD lpd and against a fault-injecting LPD peer."""

from __future__ import annotations

import errno
import fcntl
import hashlib
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
import trio

from drivers.errors import Outcome, TransportError
from drivers.testing import FailureCase, ReadDelivered, check_transport, payload, send_job
from drivers.transport import DeviceStatus, JobInfo, Transport, open_transport
from drivers.transports import tcp
from drivers.transports.lpd_protocol import job_number
from tests.peers.bsd_lpd import BsdLpd, running_bsd_lpd
from tests.support.big_job import big_file, send_file, sha256_file, watch_rss
from tests.support.fake_lpd import FakeLpd, LpdFaults
from tests.support.serving import serving

pytestmark = pytest.mark.peers
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def lpd_server() -> Iterator[BsdLpd]:
    with running_bsd_lpd() as server:
        yield server


@pytest.fixture
def lpd(lpd_server: BsdLpd) -> BsdLpd:
    lpd_server.clear_spool()
    lpd_server.set_queueing(True)
    return lpd_server


def bsd_reader(server: BsdLpd) -> ReadDelivered:
    async def read(job: JobInfo, complete: bool) -> bytes | None:
        number = job_number(job.job_id)
        if not complete:
            await trio.sleep(0.1)
            if not server.has_job(number):
                return None
        received = await trio.to_thread.run_sync(server.wait_job, number)
        if not all(path.exists() for path in received.data_files):
            return None  # a control file whose data file broke off: nothing to print
        return b"".join(path.read_bytes() for path in received.data_files)

    return read


@pytest.fixture
async def fake() -> AsyncIterator[FakeLpd]:
    async with serving(FakeLpd()) as peer:
        yield peer


def fake_reader(peer: FakeLpd) -> ReadDelivered:
    async def read(job: JobInfo, complete: bool) -> bytes | None:
        name = f"dfA{job_number(job.job_id):03d}".encode()
        for _ in range(100 if complete else 5):
            done = [j for j in peer.completed if name in j.control]
            if done:
                return bytes(done[-1].data)
            await trio.sleep(0.02)
        return None

    return read


# -- BSD lpd -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "known_length"),
    [("", False), ("", True), ("?order=data,control", False), ("?order=data,control", True)],
    ids=["spool", "known-length", "data-first", "data-first-known-length"],
)
async def test_bsd_lpd_conformance(lpd: BsdLpd, query: str, known_length: bool) -> None:
    async def disable() -> None:
        lpd.set_queueing(False)

    async def enable() -> None:
        lpd.set_queueing(True)

    refused = FailureCase("queue disabled", disable, enable, Outcome.RETRY, reason="other")
    passed = await check_transport(
        lambda: open_transport(lpd.uri + query), bsd_reader(lpd), failures=[refused],
        known_length=known_length, first_job_id=100,
    )
    assert len(passed) == 5


@pytest.mark.parametrize("size", [1000, 10 * 1024 * 1024], ids=["1KB", "10MB"])
async def test_bsd_lpd_receives_job_with_names(lpd: BsdLpd, size: int) -> None:
    data = payload(size, size)
    job = JobInfo(job_id=1234, job_name="Quarterly report.pdf", user="alice", host="gw.example")
    await send_job(open_transport(lpd.uri), job, data)
    received = lpd.wait_job(job_number(job.job_id))
    assert received.control_lines() == [
        "Hgw.example", "Palice", "JQuarterly report.pdf", "ldfA234gw.example",
        "UdfA234gw.example", "NQuarterly report.pdf",
    ]
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in received.data_files] == [
        hashlib.sha256(data).hexdigest()
    ]


async def test_bsd_lpd_200mb_job_byte_exact_with_flat_memory(lpd: BsdLpd) -> None:
    path, digest = await trio.to_thread.run_sync(big_file)
    job = JobInfo(job_id=200, job_name="big", user="bob", data_length=path.stat().st_size)
    async with watch_rss() as memory:
        with trio.fail_after(60):
            await send_file(open_transport(lpd.uri), job, path)
    received = lpd.wait_job(200)
    assert [await trio.to_thread.run_sync(sha256_file, p) for p in received.data_files] == [digest]
    assert memory.growth < 10 * 1024 * 1024


async def test_bsd_lpd_queue_state_short_and_long(lpd: BsdLpd) -> None:
    transport = open_transport(lpd.uri)
    status = await transport.query_status()
    assert status == DeviceStatus(frozenset(), "Remote queue empty.", online=True)
    await send_job(transport, JobInfo(job_id=301, user="carol"), b"%!PS\n")
    await send_job(transport, JobInfo(job_id=302, user="dave"), b"%!PS\n")
    for query in ("", "?status=long"):
        status = await open_transport(lpd.uri + query).query_status()
        assert status is not None
        assert "2 jobs in the remote queue" in status.message
    lpd.set_queueing(False)
    status = await transport.query_status()
    assert status is not None and "other-warning" in status.reasons
    assert "queue is turned off" in status.message
    assert await open_transport(lpd.uri + "?status=off").query_status() is None


async def test_bsd_lpd_unknown_queue_fails_the_probe(lpd: BsdLpd) -> None:
    """Issue 9: `probe` said exit 0 for a queue BSD lpd does not have."""
    uri = lpd.uri.rsplit("/", 1)[0] + "/nosuch"
    status = await open_transport(uri).query_status()
    assert status is not None and "other-error" in status.reasons
    assert "the server has no queue 'nosuch' (it answered: " in status.message
    assert "unknown printer" in status.message
    unknown, known = await drivers_probe(uri), await drivers_probe(lpd.uri)
    assert unknown.returncode == 1, unknown.stdout
    assert b"error:      lpd 127.0.0.1:" in unknown.stdout
    assert b"no queue 'nosuch'" in unknown.stdout
    assert known.returncode == 0, known.stdout


async def drivers_probe(uri: str) -> subprocess.CompletedProcess[bytes]:
    return await trio.run_process([sys.executable, "-m", "drivers", "probe", uri], cwd=REPO,
                                  capture_stdout=True, capture_stderr=True, check=False)


async def test_bsd_lpd_refuses_stream_mode(lpd: BsdLpd) -> None:
    transport = open_transport(lpd.uri + "?mode=stream")
    with pytest.raises(TransportError) as caught:
        await transport.start_job(JobInfo(job_id=310))
    await transport.abort_job()
    assert (caught.value.outcome, caught.value.reason) == (Outcome.RETRY, "spool-area-full")
    # BSD lpd keeps the control file it took first (its abort subcommand spares it): an entry
    # with nothing to print. order=data,control avoids it where the length is known.
    assert await bsd_reader(lpd)(JobInfo(job_id=310), False) is None


async def test_unreachable_server_means_connecting_to_device() -> None:
    transport = open_transport("lpd://127.0.0.1:9/q?contimeout=2")
    with pytest.raises(TransportError) as caught:
        await transport.start_job(JobInfo(job_id=1, data_length=1))
    assert (caught.value.outcome, caught.value.reason) == (Outcome.RETRY, "connecting-to-device")
    status = await transport.query_status()
    assert status is not None and not status.online and "offline-report" in status.reasons


@pytest.mark.parametrize(
    "uri", ["lpd://127.0.0.1:515/", "lpd://127.0.0.1/q?reserve=some", "lpd://127.0.0.1/q?format=zz"]
)
def test_bad_uri_stops_the_printer(uri: str) -> None:
    with pytest.raises(TransportError) as caught:
        open_transport(uri)
    assert caught.value.outcome is Outcome.STOP_PRINTER


# -- faults ------------------------------------------------------------------------------------


async def test_fake_lpd_conformance_with_faults(fake: FakeLpd) -> None:
    async def set_faults(**changes: Any) -> None:
        fake.faults = LpdFaults(**changes)

    cases = [
        FailureCase("refused", lambda: set_faults(refuse_receive=1), set_faults, Outcome.RETRY,
                    reason="other"),
        FailureCase("no room", lambda: set_faults(refuse_data=2), set_faults, Outcome.RETRY,
                    reason="spool-area-full"),
        FailureCase("dropped mid-data", lambda: set_faults(drop_after=100_000), set_faults,
                    Outcome.RETRY, reason="offline", size=300_000),
        FailureCase("too slow", lambda: set_faults(ack_delay=5), set_faults, Outcome.RETRY,
                    reason="timed-out"),
    ]
    passed = await check_transport(
        lambda: open_transport(fake.uri + "?timeout=0.5"), fake_reader(fake), failures=cases,
        known_length=True,
    )
    assert len(passed) == 4 + len(cases)


async def test_dropped_job_is_resent_whole_and_arrives_once(fake: FakeLpd) -> None:
    data = payload(500_000, 7)
    job = JobInfo(job_id=7, data_length=len(data))
    fake.faults = LpdFaults(drop_after=200_000)
    with pytest.raises(TransportError) as caught:
        await send_job(open_transport(fake.uri), job, data)
    assert caught.value.outcome is Outcome.RETRY
    fake.faults = LpdFaults()
    await send_job(open_transport(fake.uri), job, data)
    assert [bytes(j.data) for j in fake.completed] == [data]


async def test_slow_server_within_timeout_is_fine(fake: FakeLpd) -> None:
    fake.faults = LpdFaults(ack_delay=0.1)
    await send_job(open_transport(fake.uri + "?timeout=2"), JobInfo(job_id=8), b"slow but fine")
    assert [bytes(j.data) for j in fake.completed] == [b"slow but fine"]


@pytest.mark.parametrize("order", ["control,data", "data,control"])
async def test_missing_final_ack_counts_as_printed(fake: FakeLpd, order: str) -> None:
    fake.faults = LpdFaults(final_ack=False)
    transport = open_transport(f"{fake.uri}?order={order}&timeout=1")
    await send_job(transport, JobInfo(job_id=9), b"all of it")
    await transport.abort_job()  # the worker would not; harmless all the same
    assert [bytes(j.data) for j in fake.completed] == [b"all of it"]
    assert not fake.jobs[0].aborted


async def test_cancel_between_subcommands_sends_abort(fake: FakeLpd) -> None:
    fake.faults = LpdFaults(ack_delay=0.5, slow_from=2)  # slow from the control file's ack
    transport = open_transport(fake.uri)
    with trio.move_on_after(0.2):
        await transport.start_job(JobInfo(job_id=10, data_length=3))
    started = trio.current_time()
    await transport.abort_job()
    assert trio.current_time() - started < 1.0
    with trio.fail_after(5):
        while not fake.jobs or not (fake.jobs[0].aborted or fake.jobs[0].files):  # noqa: ASYNC110 - the fake's records
            await trio.sleep(0.02)
    assert fake.jobs[0].aborted and not fake.completed


async def test_cancel_mid_data_closes_and_nothing_is_queued(fake: FakeLpd) -> None:
    fake.faults = LpdFaults(stall_after=100_000)
    transport = open_transport(fake.uri)
    job = JobInfo(job_id=11, data_length=50_000_000)
    with trio.move_on_after(0.5):
        await send_job(transport, job, b"\x00" * 50_000_000)
    started = trio.current_time()
    await transport.abort_job()
    assert trio.current_time() - started < 1.0
    assert not fake.completed and not fake.jobs[0].aborted
    with pytest.raises(TransportError):
        await transport.send_all(b"closed")


async def test_stream_mode_to_a_server_accepting_length_zero(fake: FakeLpd) -> None:
    data = payload(300_000, 12)
    await send_job(open_transport(fake.uri + "?mode=stream&timeout=2"), JobInfo(job_id=12), data)
    job = fake.completed[0]
    assert job.announced[-1] == 0 and job.files == ["control", "data"]
    assert bytes(job.data) == data


@pytest.fixture
def reserved_ports() -> Iterator[None]:
    """The RFC 1179 source ports to this test alone among the test processes running at
    once (pytest-xdist): one test holds them all while another needs one."""
    with open(Path(tempfile.gettempdir()) / "ipp-gateway-tests-reserved-ports.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.mark.parametrize(("reserve", "low", "high"), [("rfc1179", 721, 731), ("any", 512, 1023)])
async def test_reserved_source_ports(fake: FakeLpd, reserve: str, low: int, high: int,
                                     reserved_ports: None) -> None:
    if os.geteuid() != 0:
        pytest.skip("reserved ports need root")
    transport: Transport = open_transport(f"{fake.uri}?reserve={reserve}")
    with trio.fail_after(10):
        for job_id in range(20, 25):  # more jobs than TIME_WAIT would allow on one port
            await send_job(transport, JobInfo(job_id=job_id), b"job %d" % job_id)
    assert len(fake.completed) == 5
    assert all(low <= job.source_port <= high for job in fake.jobs)


@pytest.fixture
def reserved_ports_taken(reserved_ports: None) -> Iterator[None]:
    """Every RFC 1179 source port (721-731) held by a listening socket of ours."""
    if os.geteuid() != 0:
        pytest.skip("reserved ports need root")
    held = []
    try:
        for port in tcp.RFC1179_PORTS:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            held.append(sock)
            # SO_REUSEADDR: take a port still in TIME_WAIT from an earlier test too.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                sock.bind(("0.0.0.0", port))
                sock.listen(1)
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:  # in use elsewhere is just as taken
                    raise
        yield
    finally:
        for sock in held:
            sock.close()


async def test_reserved_ports_all_taken_fails_fast_with_retry(
    fake: FakeLpd, reserved_ports_taken: None
) -> None:
    transport: Transport = open_transport(f"{fake.uri}?reserve=rfc1179&contimeout=30")
    started = trio.current_time()
    with trio.fail_after(5), pytest.raises(TransportError) as caught:
        await transport.start_job(JobInfo(job_id=26, data_length=3))  # connects at once
    elapsed = trio.current_time() - started
    assert (caught.value.outcome, caught.value.reason) == (Outcome.RETRY, "connecting-to-device")
    assert "reserved source port" in caught.value.message
    assert elapsed < 1.0, elapsed  # no stall: not the contimeout, not lpr's 511 s
    assert not fake.jobs  # not a connection reached the server
    with pytest.raises(TransportError):  # a failed call leaves the transport closed
        await transport.send_all(b"closed")
    # A job of unknown length is spooled first: the connection, and the failure, come at the end.
    with trio.fail_after(5), pytest.raises(TransportError) as caught:
        await send_job(transport, JobInfo(job_id=27), b"spooled")
    assert caught.value.outcome is Outcome.RETRY and not fake.jobs


async def test_file_longer_than_announced_is_held_before_a_byte_goes(
    fake: FakeLpd, tmp_path: Path
) -> None:
    document = tmp_path / "document"
    document.write_bytes(payload(20_000, 13))
    transport = open_transport(fake.uri)
    await transport.start_job(JobInfo(job_id=13, data_length=10_000))
    sent: list[int] = []
    with pytest.raises(TransportError) as caught:
        await transport.send_file(document, sent.append)
    assert caught.value.outcome is Outcome.HOLD and "announced 10000" in caught.value.message
    assert sent == [] and not fake.completed
    with trio.fail_after(5):
        while not fake.jobs or fake.jobs[0].announced[-1:] != [10_000]:  # noqa: ASYNC110 - the fake's records
            await trio.sleep(0.02)
    assert bytes(fake.jobs[0].data) == b""  # the data file was announced, then nothing came


async def test_file_sent_from_the_spool_is_byte_exact_and_reports_progress(
    fake: FakeLpd, tmp_path: Path
) -> None:
    data = payload(3_000_000, 14)
    document = tmp_path / "document"
    document.write_bytes(data)
    transport = open_transport(fake.uri)
    await transport.start_job(JobInfo(job_id=14, data_length=len(data)))
    sent: list[int] = []
    await transport.send_file(document, sent.append)
    await transport.end_job()
    assert sum(sent) == len(data) and all(piece > 0 for piece in sent)
    assert [bytes(j.data) for j in fake.completed] == [data]
