"""A USB printer behind the printer worker: unplugged, it shows offline, its jobs wait and
Cancel-Job still works; plugged back, the next job prints once.

No USB device can exist here, so the gateway's core runs in this process (System, printer
worker, the IPP operations through `dispatch` with real codec bytes) and the real `usbprinter`
module drives pyusb, whose backend is the simulated printer of tests/support/usb_sim.py.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import trio

from drivers.transports import usbprinter
from gateway.config import Config, PrinterConfig
from gateway.core.system import System
from ippwire.enums import GroupTag, JobState, Operation, PrinterState, Status, ValueTag
from ippwire.model import Message
from ippwire.writer import request
from tests.support.ipp_dispatch import call, job_attr
from tests.support.usb_sim import SimBackend, SimPrinter

URI = "ipp://localhost:8631/ipp/print"
DEVICE = "usb://04f9:027b"
T = ValueTag


@dataclass
class UsbGateway:
    system: System
    device: SimPrinter

    async def submit(self, data: bytes) -> int:
        reply = await call(self.system, request(Operation.PRINT_JOB, printer_uri=URI, attrs={
            "document-format": (T.MIME_MEDIA_TYPE, "application/octet-stream")}), data)
        assert reply.code == Status.OK, reply
        job_id = job_attr(reply, "job-id")
        assert isinstance(job_id, int)
        return job_id

    async def job(self, job_id: int) -> Message:
        return await call(self.system, request(Operation.GET_JOB_ATTRIBUTES, printer_uri=URI,
                                               attrs={"job-id": (T.INTEGER, job_id)}))

    async def printer(self) -> Message:
        return await call(self.system, request(Operation.GET_PRINTER_ATTRIBUTES,
                                               printer_uri=URI))

    async def cancel(self, job_id: int) -> None:
        reply = await call(self.system, request(Operation.CANCEL_JOB, printer_uri=URI,
                                                attrs={"job-id": (T.INTEGER, job_id)}))
        assert reply.code == Status.OK, reply


def printer_value(reply: Message, name: str) -> list[object]:
    group = reply.group(GroupTag.PRINTER)
    assert group is not None, reply
    attr = group.get(name)
    assert attr is not None, name
    return list(attr.plain)


async def until(check: Callable[[], Awaitable[bool]], what: str, seconds: float = 15.0
                ) -> None:
    with trio.move_on_after(seconds):
        while not await check():  # noqa: ASYNC110 - asks the gateway process
            await trio.sleep(0.02)
        return
    raise AssertionError(f"timed out waiting for {what}")


@pytest.fixture
async def usb_gateway(tmp_path: Path) -> AsyncIterator[UsbGateway]:
    device = SimPrinter()
    usbprinter.use_backend(SimBackend(device))
    config = Config(spool=tmp_path / "spool",
                    printers=(PrinterConfig("usb", DEVICE, status_interval=0.2),))
    system = System(config)
    try:
        async with trio.open_nursery() as nursery:
            await nursery.start(system.run)
            yield UsbGateway(system, device)
            nursery.cancel_scope.cancel()
    finally:
        usbprinter.use_backend(None)


async def job_state(gateway: UsbGateway, job_id: int) -> int:
    value = job_attr(await gateway.job(job_id), "job-state")
    assert isinstance(value, int)
    return value


async def test_unplugged_printer_keeps_its_jobs_and_cancel_works(usb_gateway: UsbGateway
                                                                 ) -> None:
    gateway, device = usb_gateway, usb_gateway.device
    first = await gateway.submit(b"first job\n" * 100)
    await until(lambda: _is(gateway, first, JobState.COMPLETED), "the first job")
    assert device.take() == b"first job\n" * 100

    device.unplug()
    waiting = await gateway.submit(b"waits for the printer\n")
    doomed = await gateway.submit(b"canceled while unplugged\n")

    async def shows_offline() -> bool:
        reasons = printer_value(await gateway.printer(), "printer-state-reasons")
        return any(str(r).startswith("offline") for r in reasons)

    await until(shows_offline, "printer-state-reasons to say offline")
    # Waits, not lost: pending between attempts, processing while one tries the device.
    assert await job_state(gateway, waiting) in (JobState.PENDING, JobState.PROCESSING)
    await gateway.cancel(doomed)
    assert await job_state(gateway, doomed) == JobState.CANCELED

    device.replug()
    await until(lambda: _is(gateway, waiting, JobState.COMPLETED), "the waiting job", 90)
    assert device.take() == b"waits for the printer\n"  # once, and not the canceled one
    reply = await gateway.printer()
    assert printer_value(reply, "printer-state") == [PrinterState.IDLE]
    assert not any(str(r).startswith("offline") for r in
                   printer_value(reply, "printer-state-reasons"))


async def test_cancel_while_the_printer_holds_the_data(usb_gateway: UsbGateway) -> None:
    """A busy printer (bulk OUT times out, takes nothing) mid-job: Cancel-Job ends the job
    although the device would hold it forever (no timeout= in its URI), the printer is
    soft-reset, and the next job prints alone."""
    gateway, device = usb_gateway, usb_gateway.device
    device.max_accept = 4096  # the first write is taken in part, then the printer sits on it
    stuck = await gateway.submit(b"x" * 1_000_000)

    async def holds_data() -> bool:  # the printer has part of the job in its buffer
        return device.total > 0

    await until(holds_data, "the printer to take part of the job")
    device.busy = True
    resets = device.soft_resets
    await gateway.cancel(stuck)
    await until(lambda: _is(gateway, stuck, JobState.CANCELED), "the cancel", 5.0)

    async def released() -> bool:
        return gateway.system.printers["usb"].current_job is None

    await until(released, "the worker to let the job go", 5.0)
    assert device.soft_resets > resets  # SOFT_RESET drops what the printer buffered
    device.busy, device.max_accept = False, 0
    device.take()
    after = await gateway.submit(b"next job\n")
    await until(lambda: _is(gateway, after, JobState.COMPLETED), "the next job")
    assert device.take() == b"next job\n"


async def _is(gateway: UsbGateway, job_id: int, state: JobState) -> bool:
    return await job_state(gateway, job_id) == state
