"""A gateway process with one raw printer on a device that misbehaves, watched over IPP: its
printer and job states as a snapshot (each answered within seconds, whatever the device does),
waiting for a job state, and timing a Cancel-Job until the job shows canceled and the device
is let go."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import trio

from ippwire.enums import JobState
from tests.peers.gateway_proc import GatewayProcess, PrinterTable, start_configured_gateway
from tests.support.ipp_client import StateSnapshot, cancel, job_status, printer_status

PRINTER = "device"
STATUS_INTERVAL = 0.3  # seconds between device status queries, for tests that watch them


@asynccontextmanager
async def gateway_for(workdir: Path, device: str,
                      status_interval: float = 0.0) -> AsyncIterator[GatewayProcess]:
    """A gateway process with one raw printer named PRINTER on `device`."""
    start = partial(start_configured_gateway, workdir,
                    [PrinterTable.on_device(PRINTER, device, status_interval)], log_level="info")
    process = await trio.to_thread.run_sync(start)
    try:
        yield process
    finally:
        await trio.to_thread.run_sync(process.stop)


async def printer_now(gateway: GatewayProcess) -> StateSnapshot:
    with trio.fail_after(5):  # the gateway answers at once, whatever its device does
        return await trio.to_thread.run_sync(partial(printer_status, gateway.port, PRINTER,
                                                     timeout=5.0))


async def job_now(gateway: GatewayProcess, job_id: int) -> StateSnapshot:
    with trio.fail_after(5):
        return await trio.to_thread.run_sync(job_status, gateway.port, job_id, PRINTER)


async def until_job(gateway: GatewayProcess, job_id: int, state: JobState,
                    timeout: float) -> StateSnapshot:  # noqa: ASYNC109 - every caller sets one
    with trio.fail_after(timeout):
        while (snapshot := await job_now(gateway, job_id)).state != state:  # noqa: ASYNC110 - the gateway process
            await trio.sleep(0.05)
    return snapshot


CANCEL_BUDGET = 1.0  # issue 3: Cancel-Job stops a job mid-transfer within a second


@dataclass
class CancelTimes:
    canceled: float  # seconds from the Cancel-Job response to job-state canceled over IPP
    closed: float  # ... to the gateway's end of the device connection leaving ESTABLISHED

    def check(self) -> None:
        """The job shows canceled and the device is let go within the budget."""
        assert self.canceled < CANCEL_BUDGET, self
        assert self.closed < CANCEL_BUDGET, self


async def cancel_and_time(gateway: GatewayProcess, job_id: int,
                          holds_device: Callable[[], bool]) -> CancelTimes:
    """Cancel-Job, then time the job showing canceled and `holds_device` turning false."""
    status = await trio.to_thread.run_sync(cancel, gateway.port, job_id, PRINTER)
    answered = time.monotonic()
    assert status == 0
    await until_job(gateway, job_id, JobState.CANCELED, timeout=5)
    canceled = time.monotonic() - answered
    with trio.fail_after(5):
        while holds_device():  # noqa: ASYNC110 - its /proc/PID/fd
            await trio.sleep(0.002)
    return CancelTimes(canceled, time.monotonic() - answered)
