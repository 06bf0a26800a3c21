"""The serial transport through pyserial over a pty pair (the peer plays the printer)."""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator, Callable

import pytest
import serial
import trio

from drivers.errors import Outcome, TransportError
from drivers.testing import FailureCase, check_transport, payload, send_job
from drivers.transport import JobInfo, Transport, open_transport
from drivers.transports import serialport
from tests.support.big_job import big_file, send_file, watch_rss
from tests.support.serial_pty import PtyPrinter, running_pty_printer


@pytest.fixture
async def printer() -> AsyncIterator[PtyPrinter]:
    async with running_pty_printer() as peer:
        yield peer


async def test_serial_conformance(printer: PtyPrinter) -> None:
    device = {"uri": printer.uri("soft")}

    async def unplug() -> None:
        device["uri"] = "serial:/dev/ttyGONE-ipp-gateway-test?baud=9600"

    async def replug() -> None:
        device["uri"] = printer.uri("soft")

    async def read(job: JobInfo, complete: bool) -> bytes | None:
        return await printer.take() or None

    gone = FailureCase("adapter unplugged", unplug, replug, Outcome.RETRY, reason="offline")
    passed = await check_transport(lambda: open_transport(device["uri"]), read, failures=[gone])
    assert len(passed) == 5


@pytest.mark.parametrize("flow", ["none", "hard", "dtrdsr"])
async def test_other_flow_settings_deliver(printer: PtyPrinter, flow: str) -> None:
    data = payload(100_000, 3)
    await send_job(open_transport(printer.uri(flow)), JobInfo(job_id=1), data)
    assert await printer.take() == data


class ModemLines:
    """The handshake lines a pty lacks: pyserial's `cts`/`dsr` properties, patched on the
    real serial class, read these (the transport's own code path is unchanged)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.high = {"cts": False, "dsr": False}
        self.reads = {"cts": 0, "dsr": 0}
        self.error: OSError | None = None
        for line in self.high:
            monkeypatch.setattr(serial.Serial, line, property(self._reader(line)))

    def _reader(self, line: str) -> Callable[[object], bool]:
        def read(port: object) -> bool:
            self.reads[line] += 1
            if self.error is not None:
                raise self.error
            return self.high[line]
        return read


@pytest.mark.parametrize(("flow", "line"), [("hard", "cts"), ("dtrdsr", "dsr")])
async def test_nothing_is_written_while_the_handshake_line_is_low(
    printer: PtyPrinter, monkeypatch: pytest.MonkeyPatch, flow: str, line: str
) -> None:
    lines = ModemLines(monkeypatch)
    data = payload(300_000, 7)
    transport = open_transport(printer.uri(flow))
    with trio.fail_after(10):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(send_job, transport, JobInfo(job_id=6), data)
            await trio.sleep(0.5)
            assert lines.reads[line] > 5  # it is polling the line...
            assert printer.total == 0  # ... and wrote nothing while it was low
            status = await transport.query_status()
            assert status is not None and f"{line.upper()} low" in status.message
            lines.high[line] = True
    assert await printer.take() == data
    other = "dsr" if line == "cts" else "cts"
    assert lines.reads[other] == 0  # each flow setting watches its own line only


async def test_handshake_line_dropping_mid_job_pauses_it(
    printer: PtyPrinter, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = ModemLines(monkeypatch)
    lines.high["cts"] = True
    transport = open_transport(printer.uri("hard"))
    first, second = payload(50_000, 8), payload(50_000, 9)
    with trio.fail_after(10):
        await transport.start_job(JobInfo(job_id=7))
        await transport.send_all(first)
        assert await printer.take() == first
        lines.high["cts"] = False
        async with trio.open_nursery() as nursery:
            nursery.start_soon(transport.send_all, second)
            await trio.sleep(0.3)
            assert printer.total == len(first)
            lines.high["cts"] = True
        await transport.end_job()
    assert await printer.take() == second


@pytest.mark.parametrize(("code", "delivered"), [(errno.ENOTTY, True), (errno.EINVAL, True),
                                                 (errno.EIO, False), (errno.ENODEV, False)])
async def test_unreadable_handshake_line(
    printer: PtyPrinter, monkeypatch: pytest.MonkeyPatch, code: int, delivered: bool
) -> None:
    """No modem lines at all (ENOTTY/EINVAL): nothing to wait for. An adapter gone (EIO,
    ENODEV): offline, RETRY, nothing written."""
    lines = ModemLines(monkeypatch)
    lines.error = OSError(code, "simulated")
    data = payload(10_000, 10)
    transport = open_transport(printer.uri("dtrdsr"))
    with trio.fail_after(10):
        if delivered:
            await send_job(transport, JobInfo(job_id=8), data)
            assert await printer.take() == data
            return
        with pytest.raises(TransportError) as caught:
            await send_job(transport, JobInfo(job_id=8), data)
    assert (caught.value.outcome, caught.value.reason) == (Outcome.RETRY, "offline")
    assert printer.total == 0
    with pytest.raises(TransportError):  # a failed call leaves the transport closed
        await transport.send_all(b"closed")


async def test_xoff_held_printer_is_waited_for_then_finishes(
    printer: PtyPrinter, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(serialport, "_OFFLINE_AFTER", 2.0)  # 10 s in service
    data = payload(200_000, 4)
    transport = open_transport(printer.uri("soft"))
    printer.xoff()
    await trio.sleep(0.05)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(send_job, transport, JobInfo(job_id=2), data)
        await trio.sleep(1.2)
        busy = await transport.query_status()
        assert busy is not None and "flow control" in busy.message
        assert "offline-report" not in busy.reasons  # busy for a second is not offline
        await trio.sleep(1.3)
        status = await transport.query_status()
        assert status is not None and "offline-report" in status.reasons
        assert "flow control" in status.message
        early = await printer.take(timeout=1)
        assert len(early) < len(data)
        printer.xon()
    assert early + await printer.take() == data


async def test_cancel_while_xoff_is_held(printer: PtyPrinter) -> None:
    transport = open_transport(printer.uri("soft"))
    printer.xoff()
    await trio.sleep(0.05)
    with trio.move_on_after(0.3) as scope:
        await send_job(transport, JobInfo(job_id=3), payload(1_000_000, 5))
    assert scope.cancelled_caught
    started = trio.current_time()
    await transport.abort_job()
    assert trio.current_time() - started < 1.0
    printer.xon()
    with pytest.raises(TransportError):
        await transport.send_all(b"closed")
    await printer.take()
    await send_job(transport, JobInfo(job_id=4), b"next job")
    assert await printer.take() == b"next job"


async def test_printer_not_reading_times_out_when_asked(printer: PtyPrinter) -> None:
    printer.stop_reading()
    transport: Transport = open_transport(printer.uri("none", "&timeout=0.3"))
    with pytest.raises(TransportError) as caught:
        await send_job(transport, JobInfo(job_id=5), payload(1_000_000, 6))
    assert (caught.value.outcome, caught.value.reason) == (Outcome.RETRY, "timed-out")
    printer.resume_reading()


async def test_serial_200mb_job_byte_exact_with_flat_memory(printer: PtyPrinter) -> None:
    path, digest = await trio.to_thread.run_sync(big_file)
    printer.keep_limit = 0
    async with watch_rss() as memory:
        with trio.fail_after(60):
            await send_file(open_transport(printer.uri("soft")), JobInfo(job_id=200), path)
            while printer.total < path.stat().st_size:  # noqa: ASYNC110 - bytes through the pty
                await trio.sleep(0.01)
    assert (printer.total, printer.digest.hexdigest()) == (path.stat().st_size, digest)
    assert memory.growth < 10 * 1024 * 1024


async def test_status_of_missing_and_present_port(printer: PtyPrinter) -> None:
    missing = await open_transport("serial:/dev/ttyGONE-ipp-gateway-test").query_status()
    assert missing is not None and not missing.online and "offline-report" in missing.reasons
    present = await open_transport(printer.uri()).query_status()
    assert present is not None and present.online and not present.reasons


@pytest.mark.parametrize(
    "uri", ["serial:", "serial:/dev/ttyS0?stop=3", "serial:/dev/ttyS0?flow=rts",
            "serial:/dev/ttyS0?baud=fast", "serial:/dev/ttyS0?bits=9"]
)
def test_bad_uri_stops_the_printer(uri: str) -> None:
    with pytest.raises(TransportError) as caught:
        open_transport(uri)
    assert caught.value.outcome is Outcome.STOP_PRINTER
