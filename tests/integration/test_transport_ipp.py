"""The ipp:// transport against ippeveprinter (PostScript only) and a small IPP device of our
own that can be IPP/1.0-only, busy, behind Basic or Digest, without Create-Job, or down."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import pytest
import trio

from drivers.errors import Outcome, TransportError, UriError
from drivers.testing import FailureCase, ReadDelivered, check_transport, payload, send_job
from drivers.transport import JobInfo, Supply, check_device_uri, open_transport
from drivers.transports.ipp import IppTransport
from drivers.uri import DeviceUri
from ippwire.enums import JobState
from tests.peers.ippeveprinter import IppEvePrinter
from tests.peers.require import require_programs
from tests.support import ipp_client
from tests.support.ipp_device import DeviceConfig, IppDevice, postscript_ippeveprinter
from tests.support.serving import serving

pytestmark = pytest.mark.peers

POSTSCRIPT = b"%!PS-Adobe-3.0\n%%Pages: 1\n%%EndComments\nshowpage\n%%EOF\n"
FAST = "poll=0.05&contimeout=2&timeout=5"


@pytest.fixture
async def device() -> AsyncIterator[IppDevice]:
    async with serving(IppDevice()) as peer:
        yield peer


@pytest.fixture(scope="module")
def ps_printer(tmp_path_factory: pytest.TempPathFactory) -> Iterator[IppEvePrinter]:
    require_programs("ippeveprinter", "dbus-daemon")
    with postscript_ippeveprinter(tmp_path_factory.mktemp("ps-device")) as printer:
        yield printer


def job(job_id: int, name: str = "", fmt: str = "application/postscript") -> JobInfo:
    return JobInfo(job_id=job_id, job_name=name or f"job {job_id}", user="carol",
                   document_format=fmt)


def test_uri_settings() -> None:
    """Ports by scheme, the printer-uri without credentials or options, options checked."""
    plain = IppTransport(DeviceUri.parse("ipp://u:pw@printer/ipp/print?poll=0.5&version=1.1"))
    assert (plain.settings.port, plain.settings.printer_uri, plain.settings.poll,
            plain.settings.version) == (631, "ipp://printer/ipp/print", 0.5, (1, 1))
    windows = IppTransport(DeviceUri.parse("http://server/printers/laser/.printer"))
    assert (windows.settings.port, windows.settings.target, windows.settings.tls) == (
        80, "/printers/laser/.printer", False)
    assert IppTransport(DeviceUri.parse("https://server/p")).settings.port == 443
    assert IppTransport(DeviceUri.parse("ipps://server:8631/p")).settings.tls
    with pytest.raises(UriError, match="pol: unknown option"):
        check_device_uri("ipp://printer/ipp/print?pol=1")
    with pytest.raises(UriError, match=r"version='3\.0'"):
        check_device_uri("ipp://printer/ipp/print?version=3.0")


# -- our own device ---------------------------------------------------------------------------


async def test_conformance_and_device_down(device: IppDevice) -> None:
    """The transport suite (byte-exact, idempotent close, cancel mid-send within 1 s, device
    down -> retry) over Create-Job + Send-Document, with the device's jobs mirrored."""

    async def read(info: JobInfo, complete: bool) -> bytes | None:
        found = device.job_named(info.job_name)
        return bytes(found.data) if found is not None and found.data else None

    async def down() -> None:
        device.down()

    async def back() -> None:
        await nursery.start(device.serve)

    offline = FailureCase("device down", down, back, Outcome.RETRY,
                          reason="connecting-to-device")
    delivered: ReadDelivered = read
    async with trio.open_nursery() as nursery:
        passed = await check_transport(lambda: open_transport(device.uri(query=FAST)),
                                       delivered, failures=[offline])
        nursery.cancel_scope.cancel()
    assert len(passed) == 5
    finished = [j for j in device.jobs if j.complete]
    assert finished and all(j.operations == ["Create-Job", "Send-Document"] for j in finished)
    # Every job that arrived whole is one the transport waited for to complete there.
    assert all(j.state == JobState.COMPLETED for j in finished)
    # The one job sent after the device came back arrived once.
    assert len([j for j in device.jobs if j.name.startswith("conformance after-device")]) == 1


async def test_ipp10_device_print_job_busy_then_delivered_once() -> None:
    """An IPP/1.0 device without Create-Job: 2.0 and 1.1 refused, the job goes at 1.0 by
    Print-Job with the format named; busy is a retry, and the retry delivers it once."""
    config = DeviceConfig(versions=((1, 0),), create_job=False, busy=1)
    async with serving(IppDevice(config)) as device:
        transport = open_transport(device.uri(query=FAST))
        transport_job = job(1, "legacy")
        with pytest.raises(TransportError) as refused:
            await send_job(transport, transport_job, POSTSCRIPT)
        assert refused.value.outcome is Outcome.RETRY
        assert "busy" in refused.value.message
        assert device.jobs == []  # busy: the device took nothing
        await transport.start_job(transport_job)
        transport.set_document_format("application/postscript")
        await transport.send_all(POSTSCRIPT)
        await transport.end_job()
    assert [(v, op) for v, op in device.requests[:3]] == [
        ((2, 0), "GET_PRINTER_ATTRIBUTES"), ((1, 1), "GET_PRINTER_ATTRIBUTES"),
        ((1, 0), "GET_PRINTER_ATTRIBUTES")]
    assert all(v == (1, 0) for v, _ in device.requests[3:])  # remembered
    [printed] = device.jobs
    assert (printed.version, printed.operations, printed.document_format) == (
        (1, 0), ["Print-Job"], "application/postscript")
    assert (bytes(printed.data), printed.name, printed.user) == (POSTSCRIPT, "legacy", "carol")
    assert printed.state == JobState.COMPLETED


@pytest.mark.parametrize("scheme", ["basic", "digest"])
async def test_authentication(scheme: str, caplog: pytest.LogCaptureFixture) -> None:
    """The URI's credentials answer the device's challenge (learnt before the document goes:
    one job, sent once); a wrong password holds the job, and never reaches a log line."""
    caplog.set_level(logging.DEBUG)
    async with serving(IppDevice(DeviceConfig(auth=scheme, create_job=False))) as device:
        good = open_transport(device.uri(credentials="alice:s3cret", query=FAST))
        data = payload(300_000, 7)
        await send_job(good, job(1, "authenticated"), data)
        [printed] = device.jobs
        assert bytes(printed.data) == data and printed.complete
        assert device.http_statuses.count(401) == 1  # one challenge, then answered up front
        await send_job(good, job(2, "second"), b"%!PS\n")
        assert device.http_statuses.count(401) == 1

        wrong = open_transport(device.uri(credentials="alice:Wr0ngPass", query=FAST))
        with pytest.raises(TransportError) as held:
            await send_job(wrong, job(3, "refused"), POSTSCRIPT)
        assert held.value.outcome is Outcome.HOLD
        assert "refused our credentials" in held.value.message
        anonymous = open_transport(device.uri(query=FAST))
        with pytest.raises(TransportError) as needs:
            await send_job(anonymous, job(4, "anonymous"), POSTSCRIPT)
        assert needs.value.outcome is Outcome.HOLD
        assert len(device.jobs) == 2
    assert "s3cret" not in caplog.text and "Wr0ngPass" not in caplog.text


async def test_status_supplies_and_device_id(device: IppDevice) -> None:
    transport = open_transport(device.uri(query=FAST))
    status = await transport.query_status()
    assert status is not None and status.online
    assert status.reasons == frozenset({"toner-low-report"})
    assert status.message == "Toner is low."
    assert status.supplies == (Supply("Black Toner", "toner", "#000000", 7, 10, 100),
                               Supply("Drum", "opc", "none", 80, 5, 100))
    assert await transport.device_id() == "MFG:Test;MDL:LaserJet;CMD:PCL,POSTSCRIPT;"
    device.down()
    offline = await transport.query_status()
    assert offline is not None and not offline.online


async def test_device_gone_after_accepting_is_not_resent(device: IppDevice) -> None:
    """Once the device holds the document, end_job never fails for the device being gone:
    it keeps mirroring, and resumes when the device is back."""
    device.config.process_seconds = 3600  # stays processing until we let it finish
    transport = open_transport(device.uri(query="poll=0.05&contimeout=1&timeout=2"))
    async with trio.open_nursery() as nursery:
        done = trio.Event()

        async def finish() -> None:
            await send_job(transport, job(1, "accepted"), POSTSCRIPT)
            done.set()

        nursery.start_soon(finish)
        with trio.fail_after(10):
            while not device.jobs or not device.jobs[0].complete:  # noqa: ASYNC110
                await trio.sleep(0.01)
        device.down()
        await trio.sleep(0.3)  # a few polls meet a refused connection
        assert not done.is_set()
        await nursery.start(device.serve)
        device.jobs[0].finish_at = 0  # the device prints it now
        with trio.fail_after(10):
            await done.wait()
        nursery.cancel_scope.cancel()  # the device served again from this nursery
    assert len(device.jobs) == 1 and device.jobs[0].state == JobState.COMPLETED


# -- ippeveprinter, PostScript only -------------------------------------------------------------


@pytest.mark.slow
async def test_ippeveprinter_postscript_job_and_cancel(ps_printer: IppEvePrinter) -> None:
    """The PostScript arrives in ippeveprinter's spool and its job completes (end_job returns
    only then); PDF, which it does not take, cancels the job naming the format; a job
    cancelled while the device processes it is cancelled there. (One test: one device.)"""
    transport = open_transport(ps_printer.printer_uri + "?poll=0.1")
    await send_job(transport, job(1, "fast"), POSTSCRIPT)
    [spooled] = [p for p in ps_printer.spool.iterdir() if p.name.endswith("-fast.ps")]
    assert spooled.read_bytes() == POSTSCRIPT

    await transport.start_job(job(3, "pdf", fmt="application/pdf"))
    with pytest.raises(TransportError) as refused:
        await transport.send_all(b"%PDF-1.4\n")
        await transport.end_job()
    assert refused.value.outcome is Outcome.CANCEL
    assert "application/pdf" in refused.value.message

    slow = IppTransport(DeviceUri.parse(ps_printer.printer_uri + "?poll=0.1"))
    await slow.start_job(job(2, "slow"))
    slow.set_document_format("application/postscript")
    await slow.send_all(POSTSCRIPT)
    device_job: list[int] = []
    with trio.move_on_after(20) as waited:

        async def until_processing() -> None:
            while True:
                await trio.sleep(0.1)
                device_id = slow._device_job.job_id  # the device's job, as a test may look
                if device_id is None:
                    continue
                status = await trio.to_thread.run_sync(ipp_client.job_status, ps_printer.port,
                                                       device_id)
                if status.state == JobState.PROCESSING:
                    device_job.append(device_id)
                    return

        async with trio.open_nursery() as nursery:
            nursery.start_soon(slow.end_job)
            await until_processing()
            nursery.cancel_scope.cancel()  # as the printer worker cancels a job
    assert not waited.cancelled_caught
    await slow.abort_job()
    status = await trio.to_thread.run_sync(ipp_client.job_status, ps_printer.port,
                                           device_job[0])
    assert status.state == JobState.CANCELED or "processing-to-stop-point" in status.reasons

