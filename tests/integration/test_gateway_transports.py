"""Issue 3 at the gateway level: IPP Print-Job to a real BSD lpd and to p910nd, the remote
queue state in Get-Printer-Attributes, flat memory for a 200 MB job, and the device tools.

One gateway serves three printers (lpd, lpd with long queue state, socket) for the module.
Faults and Cancel-Job are in test_gateway_transport_faults.py.
"""

from __future__ import annotations

import hashlib
import re
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import trio

from drivers.testing import payload
from drivers.transports.lpd_protocol import job_number
from ippwire.enums import JobState, PrinterState
from tests.peers import CORPUS_DIR
from tests.peers.bsd_lpd import BsdLpd, running_bsd_lpd
from tests.peers.gateway_proc import (
    GatewayProcess,
    PrinterTable,
    proc_status_kb,
    start_configured_gateway,
)
from tests.peers.p910nd import P910nd, running_p910nd
from tests.support.big_job import big_file, sha256_file
from tests.support.fake_socket import FakeSocketPeer
from tests.support.ipp_client import StateSnapshot, submit, wait_job, wait_printer
from tests.support.serving import serving

pytestmark = pytest.mark.peers

REPO = Path(__file__).resolve().parents[2]
STATUS_INTERVAL = 0.5
SIZES = [pytest.param(1000, id="1KB"), pytest.param(10 * 1024 * 1024, id="10MB")]
MB = 1024 * 1024


def completed(snapshot: StateSnapshot) -> bool:
    return snapshot.state == JobState.COMPLETED


@pytest.fixture(scope="module")
def lpd() -> Iterator[BsdLpd]:
    with running_bsd_lpd() as server:
        yield server


@pytest.fixture(scope="module")
def p910nd() -> Iterator[P910nd]:
    with running_p910nd(hash_only=True) as server:
        yield server


@pytest.fixture(scope="module")
def gateway(lpd: BsdLpd, p910nd: P910nd,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    printers = [
        PrinterTable.on_device("lpd", lpd.uri, STATUS_INTERVAL),
        PrinterTable.on_device("lpdlong", lpd.uri + "?status=long", STATUS_INTERVAL),
        PrinterTable.on_device("socket", p910nd.uri),
        # Converted output has no known length: the lpd transport's mode=spool path.
        PrinterTable.on_device("lpdpcl", lpd.uri, driver="pcl5"),
        PrinterTable.on_device("lpdps", lpd.uri, driver="postscript"),
        PrinterTable.on_device("lpdbanner", lpd.uri + "?banner=on"),
    ]
    process = start_configured_gateway(tmp_path_factory.mktemp("gateway"), printers,
                                       log_level="info")
    try:
        yield process
    finally:
        process.stop()
        assert process.proc.returncode == 0, process.log.read_text()[-2000:]


# -- lpd:// to BSD lpd -------------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_lpd_job_arrives_byte_identical_naming_user_and_job(
    gateway: GatewayProcess, lpd: BsdLpd, size: int
) -> None:
    data = payload(size, size)
    title = f"Quarterly report {size}"
    job_id = submit(gateway.port, data, printer="lpd", name=title, user="alice")
    # The control file lands before the data file is complete: wait for the job's end first.
    wait_job(gateway.port, job_id, "lpd", completed, timeout=30, what="completed job")
    received = lpd.wait_job(job_number(job_id))
    lines = received.control_lines()
    assert {"Palice", f"J{title}", f"N{title}"} <= set(lines), lines
    assert [line[0] for line in lines if line[:1].islower()] == ["l"]
    assert [hashlib.sha256(p.read_bytes()).hexdigest() for p in received.data_files] == [
        hashlib.sha256(data).hexdigest()]


def _queue_count(snapshot: StateSnapshot) -> int | None:
    found = re.search(r"(\d+) jobs? in the remote queue", snapshot.message)
    return int(found.group(1)) if found else None


def test_lpd_queue_state_shows_in_printer_attributes(
    gateway: GatewayProcess, lpd: BsdLpd
) -> None:
    job_id = submit(gateway.port, b"%!PS\nshowpage\n", printer="lpd", user="carol")
    wait_job(gateway.port, job_id, "lpd", completed, timeout=10, what="completed job")
    queued = len(list(lpd.spool.glob("cfA*")))  # nothing prints: every job stays queued
    assert queued >= 1
    for printer in ("lpd", "lpdlong"):  # send-queue-state short and long
        started = time.monotonic()
        seen = wait_printer(gateway.port, printer, lambda s: _queue_count(s) == queued,
                            timeout=3 * STATUS_INTERVAL + 1, what=f"{queued} jobs in {printer}")
        print(f"{printer}: queue of {queued} shown after {time.monotonic() - started:.2f} s")
        assert seen.state == PrinterState.IDLE and seen.reasons == ("none",)
    lpd.set_queueing(False)
    try:
        started = time.monotonic()
        off = wait_printer(gateway.port, "lpd", lambda s: "other-warning" in s.reasons,
                           timeout=3 * STATUS_INTERVAL + 1, what="queue-off warning")
        print(f"lpd: disabled queue shown after {time.monotonic() - started:.2f} s")
        assert "queue is turned off" in off.message
    finally:
        lpd.set_queueing(True)
    wait_printer(gateway.port, "lpd", lambda s: s.reasons == ("none",),
                 timeout=3 * STATUS_INTERVAL + 1, what="warning cleared")


def _lpd_job(gateway: GatewayProcess, lpd: BsdLpd, printer: str, document: bytes | Path, *,
             fmt: str, name: str, user: str, timeout: float = 60) -> tuple[list[str], bytes]:
    """Print-Job to `printer`; (control lines, the one data file) as they reached BSD lpd.

    For a converted job the gateway does not know the output's length, so the lpd transport
    spools it first (mode=spool): BSD lpd refuses a data file announced with length 0, so a
    job that completes there went the spool way."""
    job_id = submit(gateway.port, document, printer=printer, name=name, user=user, fmt=fmt)
    wait_job(gateway.port, job_id, printer, completed, timeout=timeout, what="completed job")
    received = lpd.wait_job(job_number(job_id))
    lines = received.control_lines()
    assert {f"P{user}", f"J{name}", f"N{name}"} <= set(lines), lines
    assert len(received.data_files) == 1, lines
    return lines, received.data_files[0].read_bytes()


TEXT = "Minutes of the LPD spool meeting\nItem 1: unknown lengths\n"


@pytest.mark.parametrize(("printer", "fmt", "document", "start", "text"), [
    pytest.param("lpdpcl", "text/plain", TEXT.encode(), b"\x1bE", True, id="text-pcl5"),
    pytest.param("lpdps", "text/plain", TEXT.encode(), b"%!", True, id="text-postscript"),
    pytest.param("lpdpcl", "application/pdf", CORPUS_DIR / "testpage-1p-vector.pdf", b"\x1bE",
                 False, id="pdf-pcl5"),
    pytest.param("lpdps", "application/pdf", CORPUS_DIR / "testpage-1p-vector.pdf", b"%!",
                 False, id="pdf-postscript"),
])
def test_lpd_converted_job_of_unknown_length_is_spooled_then_sent(
    gateway: GatewayProcess, lpd: BsdLpd, printer: str, fmt: str, document: bytes | Path,
    start: bytes, text: bool,
) -> None:
    if isinstance(document, Path) and not document.exists():
        pytest.skip(f"corpus file {document} missing")
    lines, data = _lpd_job(gateway, lpd, printer, document, fmt=fmt, name=f"Minutes {printer}",
                           user="erin")
    # The driver's job may open with a PJL header (UEL ... @PJL ENTER LANGUAGE=...).
    body = data[data.index(b"@PJL ENTER LANGUAGE"):].split(b"\n", 1)[1] \
        if data.startswith(b"\x1b%-12345X") else data
    assert body.startswith(start), data[:200]
    assert len(data) > 100
    if text:
        for line in TEXT.splitlines():
            assert line.encode() in data, (line, data[:400])
    print(f"{printer} {fmt}: {len(data)} bytes at lpd; control {lines}")


def test_lpd_banner_on_puts_class_and_banner_lines_in_the_control_file(
    gateway: GatewayProcess, lpd: BsdLpd
) -> None:
    lines, data = _lpd_job(gateway, lpd, "lpdbanner", b"banner job\n", fmt="text/plain",
                           name="With banner", user="frank")
    assert data == b"banner job\n"
    classes = [line for line in lines if line.startswith("C")]
    assert len(classes) == 1 and len(classes[0]) > 1, lines
    assert "Lfrank" in lines, lines
    # RFC 1179: C (class for the banner) comes before L (print the banner page).
    assert lines.index(classes[0]) < lines.index("Lfrank")
    plain, _ = _lpd_job(gateway, lpd, "lpd", b"no banner\n", fmt="text/plain",
                        name="No banner", user="frank")
    assert not [line for line in plain if line[:1] in ("C", "L")], plain


# -- socket:// to p910nd -----------------------------------------------------------------------


@pytest.mark.parametrize("size", SIZES)
def test_socket_job_arrives_byte_identical(
    gateway: GatewayProcess, p910nd: P910nd, size: int
) -> None:
    index = len(p910nd.records()) + 1
    data = payload(size, size + 1)
    job_id = submit(gateway.port, data, printer="socket", name="plot", user="bob")
    wait_job(gateway.port, job_id, "socket", completed, timeout=30, what="completed job")
    record = p910nd.wait_record(index)
    assert (record.size, record.sha256) == (size, hashlib.sha256(data).hexdigest())
    assert len(p910nd.records()) == index  # one connection, one copy


def vm_rss(pid: int) -> int:
    """Resident memory of process `pid` in bytes."""
    return proc_status_kb(pid, "VmRSS") * 1024


class RssSampler:
    """Peak VmRSS of a process, sampled every few milliseconds in a thread."""

    def __init__(self, pid: int, interval: float = 0.01) -> None:
        self.pid, self.interval = pid, interval
        self.start = self.peak = vm_rss(pid)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            self.peak = max(self.peak, vm_rss(self.pid))
            self.samples += 1

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, vm_rss(self.pid))


def test_200mb_job_through_the_gateway_keeps_memory_flat(
    gateway: GatewayProcess, p910nd: P910nd
) -> None:
    path, digest = big_file()
    warm_up = submit(gateway.port, b"warm-up", printer="socket")  # every code path loaded
    wait_job(gateway.port, warm_up, "socket", completed, timeout=10, what="warm-up job")
    index = len(p910nd.records()) + 1
    started = time.monotonic()
    with RssSampler(gateway.pid) as rss:
        job_id = submit(gateway.port, path, printer="socket", name="big", user="dora")
        wait_job(gateway.port, job_id, "socket", completed, timeout=90, what="200 MB job")
    record = p910nd.wait_record(index, timeout=30)
    print(f"200 MB through the gateway in {time.monotonic() - started:.1f} s; RSS "
          f"{rss.start / MB:.1f} -> peak {rss.peak / MB:.1f} MB ({rss.samples} samples)")
    assert (record.size, record.sha256) == (path.stat().st_size, digest)
    assert rss.samples > 10
    assert rss.peak - rss.start < 10 * MB


def test_200mb_job_to_bsd_lpd_arrives_byte_identical_with_memory_flat(
    gateway: GatewayProcess, lpd: BsdLpd
) -> None:
    path, digest = big_file()
    warm_up = submit(gateway.port, b"warm-up", printer="lpd")  # every code path loaded
    wait_job(gateway.port, warm_up, "lpd", completed, timeout=10, what="warm-up job")
    started = time.monotonic()
    with RssSampler(gateway.pid) as rss:
        job_id = submit(gateway.port, path, printer="lpd", name="big lpd", user="gus")
        wait_job(gateway.port, job_id, "lpd", completed, timeout=120, what="200 MB lpd job")
    received = lpd.wait_job(job_number(job_id), timeout=30)
    print(f"200 MB through the gateway to BSD lpd in {time.monotonic() - started:.1f} s; RSS "
          f"{rss.start / MB:.1f} -> peak {rss.peak / MB:.1f} MB ({rss.samples} samples)")
    lines = received.control_lines()
    assert {"Pgus", "Jbig lpd", "Nbig lpd"} <= set(lines), lines
    [data_file] = received.data_files
    try:
        assert data_file.stat().st_size == path.stat().st_size
        assert sha256_file(data_file) == digest
    finally:
        data_file.unlink(missing_ok=True)  # 200 MB of /tmp; the control file stays queued
    assert rss.samples > 10
    assert rss.peak - rss.start < 10 * MB


# -- the device tools --------------------------------------------------------------------------


def ipp_gateway_argv(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "ipp-gateway"
    return [str(script), *args] if script.exists() else [sys.executable, "-m", "gateway", *args]


@pytest.fixture
async def socket_peer() -> AsyncIterator[FakeSocketPeer]:
    async with serving(FakeSocketPeer()) as peer:
        yield peer


async def test_ipp_gateway_probe_and_devices(socket_peer: FakeSocketPeer, lpd: BsdLpd) -> None:
    async def run(*args: str) -> subprocess.CompletedProcess[bytes]:
        with trio.fail_after(30):
            return await trio.run_process(ipp_gateway_argv(*args), cwd=REPO, check=False,
                                          capture_stdout=True, capture_stderr=True)

    probed = await run("probe", socket_peer.uri)
    out = probed.stdout.decode()
    assert probed.returncode == 0, probed.stderr.decode()
    assert f"device:     {socket_peer.uri}" in out and "reachable:  yes" in out
    assert "accepts connections" in out
    assert [bytes(c.data) for c in socket_peer.connections] == [b""]  # connected, sent nothing
    probed = await run("probe", lpd.uri + "?status=long")
    assert probed.returncode == 0 and "reachable:  yes" in probed.stdout.decode()
    assert re.search(r"status:     (\d+ jobs? in the remote queue|Remote queue empty\.)",
                     probed.stdout.decode())
    listed = await run("devices")
    assert listed.returncode == 0, listed.stderr.decode()
    lines = listed.stdout.decode().splitlines()
    assert lines == ["no USB printers or serial ports found"] or all(
        re.match(r"(usb|usblp|serial) +\S+:", line) or line.startswith("        ")
        for line in lines)
