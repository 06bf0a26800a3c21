"""The USB transport: the real usbprinter module driving pyusb, with a simulated printer
behind pyusb's backend interface."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import trio

from drivers.errors import Outcome, TransportError
from drivers.ieee1284 import parse_device_id
from drivers.testing import FailureCase, check_transport, payload, send_job
from drivers.transport import DeviceStatus, JobInfo, open_transport
from drivers.transports import usbprinter
from tests.support.big_job import big_file, send_file, watch_rss
from tests.support.usb_sim import SimBackend, SimPrinter

URI = "usb://04f9:2015?serial=SIM0001"  # a product id without hex letters: see test below


@pytest.fixture
def printer() -> Iterator[SimPrinter]:
    device = SimPrinter(product=0x2015)
    usbprinter.use_backend(SimBackend(device))
    try:
        yield device
    finally:
        usbprinter.use_backend(None)


async def read(printer: SimPrinter) -> bytes | None:
    return printer.take() or None


async def test_usb_conformance(printer: SimPrinter) -> None:
    async def unplug() -> None:
        printer.unplug()

    async def replug() -> None:
        printer.replug()

    cases = [
        FailureCase("unplugged", unplug, replug, Outcome.RETRY, reason="offline"),
        FailureCase("unplugged mid-job", unplug, replug, Outcome.RETRY, reason="offline",
                    at_byte=100_000),
    ]
    passed = await check_transport(
        lambda: open_transport(URI), lambda job, complete: read(printer), failures=cases
    )
    assert len(passed) == 6


async def test_device_id_and_kernel_driver_handling(printer: SimPrinter) -> None:
    transport = open_transport(URI)
    text = await transport.device_id()
    assert text is not None and parse_device_id(text).make_and_model == "Acme Laser 1"
    assert printer.kernel_driver  # given back after the query
    await transport.start_job(JobInfo(job_id=1))
    assert not printer.kernel_driver and printer.claimed == {0}
    await transport.send_all(b"data")
    await transport.end_job()
    assert printer.kernel_driver and not printer.claimed
    assert printer.take() == b"data"


@pytest.mark.parametrize(
    ("bits", "reasons", "online"),
    [(0x18, set(), True), (0x38, {"media-empty-error"}, True),
     (0x08, {"offline-report"}, False), (0x10, {"other-error"}, True)],
)
async def test_port_status(printer: SimPrinter, bits: int, reasons: set[str], online: bool) -> None:
    printer.port_status = bits
    status = await open_transport(URI).query_status()
    assert status is not None and set(status.reasons) == reasons and status.online is online


async def test_stalls_are_cleared_unless_they_persist(printer: SimPrinter) -> None:
    data = payload(200_000, 1)
    printer.stalls = 2
    await send_job(open_transport(URI), JobInfo(job_id=2), data)
    assert printer.take() == data
    printer.stalls = 100
    with pytest.raises(TransportError) as caught:
        await send_job(open_transport(URI), JobInfo(job_id=3), data)
    assert (caught.value.outcome, caught.value.reason) == (Outcome.RETRY, "other")


async def test_partial_writes_lose_and_repeat_nothing(printer: SimPrinter) -> None:
    data = payload(40_000, 2)
    printer.max_accept = 3000
    await send_job(open_transport(URI), JobInfo(job_id=4), data)
    assert printer.take() == data


async def test_busy_printer_waits_reports_and_cancels_quickly(printer: SimPrinter) -> None:
    printer.busy, printer.port_status = True, 0x38
    transport = open_transport(URI)
    with trio.move_on_after(0.6) as scope:
        await send_job(transport, JobInfo(job_id=5), payload(100_000, 3))
    assert scope.cancelled_caught and printer.total == 0
    status = await open_transport(URI).query_status()
    assert status is not None and "media-empty-error" in status.reasons
    started = trio.current_time()
    await transport.abort_job()
    assert trio.current_time() - started < 1.0
    assert printer.soft_resets == 1 and printer.kernel_driver


async def test_busy_printer_times_out_when_asked(printer: SimPrinter) -> None:
    printer.busy = True
    with pytest.raises(TransportError) as caught:
        await send_job(open_transport(URI + "&timeout=0.4"), JobInfo(job_id=6), b"x" * 1000)
    assert (caught.value.outcome, caught.value.reason) == (Outcome.RETRY, "timed-out")


async def test_unplugged_printer_shows_offline_and_comes_back(printer: SimPrinter) -> None:
    printer.unplug()
    status = await open_transport(URI).query_status()
    assert status is not None and not status.online and "offline-report" in status.reasons
    assert await open_transport(URI).device_id() is None
    printer.replug()
    await send_job(open_transport(URI), JobInfo(job_id=7), b"after replug")
    assert printer.take() == b"after replug"


async def test_serial_number_picks_the_printer() -> None:
    first, second = SimPrinter(product=0x2015, serial="A1"), SimPrinter(product=0x2015,
                                                                         serial="B2")
    usbprinter.use_backend(SimBackend(first, second))
    try:
        await send_job(open_transport("usb://04f9:2015?serial=B2"), JobInfo(job_id=8), b"to B2")
        assert (first.take(), second.take()) == (b"", b"to B2")
        with pytest.raises(TransportError) as caught:
            await open_transport("usb://04f9:2015?serial=C3").start_job(JobInfo(job_id=9))
        assert caught.value.reason == "offline"
    finally:
        usbprinter.use_backend(None)


async def test_unidirectional_printer_and_back_channel_status() -> None:
    unidirectional = SimPrinter(product=0x2015, protocol=1)
    usbprinter.use_backend(SimBackend(unidirectional))
    try:
        await send_job(open_transport(URI), JobInfo(job_id=10), b"one way")
        assert unidirectional.take() == b"one way"
    finally:
        usbprinter.use_backend(None)
    bidirectional = SimPrinter(product=0x2015)
    bidirectional.back_channel += (
        b'@PJL USTATUS DEVICE\r\nCODE=40021\r\nDISPLAY="Close door"\r\n\x0c'
    )
    usbprinter.use_backend(SimBackend(bidirectional))
    try:
        transport = open_transport(URI)
        await transport.start_job(JobInfo(job_id=11))
        await transport.send_all(b"job")
        status = await transport.query_status()
        assert status == DeviceStatus(frozenset({"door-open-error"}), "Close door", online=True)
        await transport.end_job()
    finally:
        usbprinter.use_backend(None)


async def test_usb_200mb_job_byte_exact_with_flat_memory(printer: SimPrinter) -> None:
    path, digest = await trio.to_thread.run_sync(big_file)
    printer.keep_limit = 0
    async with watch_rss() as memory:
        with trio.fail_after(60):
            await send_file(open_transport(URI), JobInfo(job_id=200), path)
    assert (printer.total, printer.digest.hexdigest()) == (path.stat().st_size, digest)
    assert memory.growth < 10 * 1024 * 1024


@pytest.mark.parametrize(
    ("raw", "ids"),
    [("usb://04f9:027b?serial=X", (0x04F9, 0x027B)), ("usb:04F9:027B", (0x04F9, 0x027B)),
     ("usb://0a5f:00d3/", (0x0A5F, 0x00D3))],
)
def test_usb_address_parsing(raw: str, ids: tuple[int, int]) -> None:
    assert usbprinter.parse_address(raw) == ids


@pytest.mark.parametrize("uri", ["usb://04f9", "usb:zz:yy", "usb://04f9:2015?interface=x"])
def test_bad_uri_stops_the_printer(uri: str) -> None:
    with pytest.raises(TransportError) as caught:
        open_transport(uri)
    assert caught.value.outcome is Outcome.STOP_PRINTER


# -- a multifunction device: the printer is interface 1 -------------------------------------


@pytest.fixture
def multifunction() -> Iterator[SimPrinter]:
    device = SimPrinter(product=0x2016, serial="MF01", multi_interface=True, port_status=0x38)
    usbprinter.use_backend(SimBackend(device))
    try:
        yield device
    finally:
        usbprinter.use_backend(None)


def _untouched(device: SimPrinter) -> None:
    assert device.bad_requests == [], device.bad_requests
    assert device.foreign_touches == [], device.foreign_touches  # the card reader is left be


@pytest.mark.parametrize("query", ["", "?interface=1", "?serial=MF01&interface=1"])
async def test_multifunction_printer_interface_is_found_and_used(
    multifunction: SimPrinter, query: str
) -> None:
    transport = open_transport("usb://04f9:2016" + query)
    text = await transport.device_id()
    assert text == multifunction.device_id
    status = await transport.query_status()
    assert status is not None and "media-empty-error" in status.reasons  # bit 0x20 on intf 1
    data = payload(300_000, 21)
    await transport.start_job(JobInfo(job_id=21))
    assert multifunction.claimed == {1} and not multifunction.kernel_driver
    assert multifunction.alt_settings.get(1, 0) == 0  # protocol 2, never the IPP-USB alternate
    await transport.send_all(data)
    during = await transport.query_status()  # on the job's own connection
    assert during is not None and "media-empty-error" in during.reasons
    await transport.end_job()
    assert multifunction.take() == data
    assert multifunction.kernel_driver and not multifunction.claimed  # usblp has it back
    with trio.fail_after(5):
        with trio.move_on_after(0.2):  # cancel: SOFT_RESET goes to interface 1
            await send_job(transport, JobInfo(job_id=22), payload(1000, 22))
        await transport.start_job(JobInfo(job_id=23))
        await transport.abort_job()
    assert multifunction.soft_resets == 1
    _untouched(multifunction)


@pytest.mark.parametrize("number", [0, 2])
async def test_explicit_interface_that_is_no_printer_stops_the_printer(
    multifunction: SimPrinter, number: int
) -> None:
    transport = open_transport(f"usb://04f9:2016?interface={number}")
    with pytest.raises(TransportError) as caught:
        await transport.start_job(JobInfo(job_id=24))
    assert caught.value.outcome is Outcome.STOP_PRINTER
    _untouched(multifunction)


async def test_ipp_usb_only_alternate_is_not_a_printer(multifunction: SimPrinter) -> None:
    multifunction.protocol = 4  # both alternates IPP-over-USB: nothing for a class driver
    assert usbprinter.find_printers(0x04F9, 0x2016) == []
    transport = open_transport("usb://04f9:2016")
    with pytest.raises(TransportError) as caught:
        await transport.start_job(JobInfo(job_id=25))
    assert caught.value.reason == "offline"
