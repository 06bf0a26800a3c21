"""Issue 3's failure policy at the gateway level: the outcomes that wait for a person.

RETRY and RETRY_CURRENT are covered by test_gateway_transport_faults*.py; here a real gateway
process meets a device failure whose outcome is STOP_PRINTER (the printer stops, the job waits
until Resume-Printer) or HOLD (the job is held until Release-Job), each raised by the transport
as it runs on a real device, and seen over IPP. Once the cause is gone and the operator acted,
the job prints exactly once. Then the progress each job publishes: job-k-octets-processed
(RFC 8011 5.3.18.1), job-impressions-completed and job-media-sheets-completed.
"""

from __future__ import annotations

import math
from functools import partial
from pathlib import Path

import pytest
import trio

from drivers.testing import payload
from ippwire.enums import GroupTag, JobState, Operation, PrinterState, Status, ValueTag
from ippwire.writer import AttributeSpec
from tests.peers.gateway_proc import GatewayProcess, PrinterTable, start_configured_gateway
from tests.support.device_gateway import PRINTER, gateway_for, job_now, printer_now, until_job
from tests.support.fake_lpd import FakeLpd
from tests.support.ipp_client import submit
from tests.support.ipp_jobs import Attrs, IppPrinter, Reply, plain

pytestmark = pytest.mark.peers

T = ValueTag


async def operate(gateway: GatewayProcess, operation: int,
                  attrs: AttributeSpec | None = None) -> Reply:
    printer = IppPrinter(gateway.port, PRINTER)
    with trio.fail_after(10):
        reply = await trio.to_thread.run_sync(printer.send, operation, attrs)
    assert reply.status == Status.OK, (hex(reply.status), reply.status_message)
    return reply


async def job_attrs(gateway: GatewayProcess, job_id: int) -> Attrs:
    return (await operate(gateway, Operation.GET_JOB_ATTRIBUTES,
                          {"job-id": (T.INTEGER, job_id)})).job


async def submit_to(gateway: GatewayProcess, data: bytes) -> int:
    return await trio.to_thread.run_sync(partial(submit, gateway.port, data, printer=PRINTER,
                                                 name="outcome test", user="ursula"))


# -- STOP_PRINTER: the device path cannot be opened --------------------------------------------


async def test_stop_printer_outcome_stops_the_printer_until_resume(tmp_path: Path) -> None:
    """A file device whose directory cannot be made (its parent is a regular file, which
    stops root as well as anyone): the printer stops, the job waits, nothing is retried;
    once the file is gone, Resume-Printer prints the job once."""
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"not a directory")
    out = blocker / "out"
    data = payload(200_000, 21)
    async with gateway_for(tmp_path / "gateway", out.as_uri() + "/") as gateway:
        job_id = await submit_to(gateway, data)
        with trio.fail_after(10):
            while (printer := await printer_now(gateway)).state != PrinterState.STOPPED:  # noqa: ASYNC110 - the gateway process, over IPP
                await trio.sleep(0.05)
        assert "other-error" in printer.reasons, printer
        assert "Not a directory" in printer.message and "job-00001.prn" in printer.message
        job = await job_now(gateway, job_id)
        assert job.state == JobState.PENDING, job  # not lost: it waits for the printer
        assert job.reasons == ("printer-stopped", "job-queued"), job
        assert "Not a directory" in job.message, job
        await trio.sleep(1.5)  # longer than the first retry delay: a stopped printer waits
        assert gateway.attempts(job_id) == 1
        assert (await printer_now(gateway)).state == PrinterState.STOPPED
        assert (await job_now(gateway, job_id)).state == JobState.PENDING

        blocker.unlink()  # the cause is removed ...
        assert (await job_now(gateway, job_id)).state == JobState.PENDING  # ... nothing moves
        await operate(gateway, Operation.RESUME_PRINTER)  # until the operator says so
        await until_job(gateway, job_id, JobState.COMPLETED, timeout=10)
        assert gateway.attempts(job_id) == 2
        idle = await printer_now(gateway)
        assert (idle.state, idle.reasons, idle.message) == (PrinterState.IDLE, ("none",),
                                                           "Ready."), idle
    assert sorted(p.name for p in out.iterdir()) == [f"job-{job_id:05d}.prn"]
    assert (out / f"job-{job_id:05d}.prn").read_bytes() == data


async def test_stop_printer_keeps_every_waiting_job(tmp_path: Path) -> None:
    """Jobs queued behind the one that stopped the printer wait too, and all print in order
    once the printer is resumed: none lost, none twice."""
    blocker = tmp_path / "blocker"
    blocker.write_bytes(b"")
    out = blocker / "out"
    documents = [payload(10_000 + n, 30 + n) for n in range(3)]
    async with gateway_for(tmp_path / "gateway", out.as_uri() + "/") as gateway:
        ids = [await submit_to(gateway, document) for document in documents]
        with trio.fail_after(10):
            while (await printer_now(gateway)).state != PrinterState.STOPPED:  # noqa: ASYNC110 - the gateway process, over IPP
                await trio.sleep(0.05)
        await trio.sleep(0.5)
        for job_id in ids:
            assert (await job_now(gateway, job_id)).state == JobState.PENDING
        assert [gateway.attempts(job_id) for job_id in ids] == [1, 0, 0]
        blocker.unlink()
        await operate(gateway, Operation.RESUME_PRINTER)
        for job_id in ids:
            await until_job(gateway, job_id, JobState.COMPLETED, timeout=10)
        assert [gateway.attempts(job_id) for job_id in ids] == [2, 1, 1]
    assert [(out / f"job-{job_id:05d}.prn").read_bytes() for job_id in ids] == documents
    assert len(list(out.iterdir())) == len(ids)


# -- HOLD: the job's data does not match what was announced -------------------------------------


async def test_hold_outcome_holds_the_job_until_release(
    fake_lpd: FakeLpd, tmp_path: Path
) -> None:
    """A raw LPD job announces the spooled document's length in its receive-data-file
    subcommand; a spool file that changed since the job was accepted cannot be sent as
    announced (lpd_protocol: HOLD). The job is held for the operator, the printer goes on;
    with the document restored, Release-Job prints it once."""
    data = payload(300_000, 22)
    async with gateway_for(tmp_path, fake_lpd.uri) as gateway:
        await operate(gateway, Operation.PAUSE_PRINTER)  # keep the job queued meanwhile
        job_id = await submit_to(gateway, data)
        document = gateway.spool / "jobs" / f"{job_id:05d}.doc"
        assert document.read_bytes() == data
        document.write_bytes(data + b"appended behind the gateway's back")
        await operate(gateway, Operation.RESUME_PRINTER)
        held = await until_job(gateway, job_id, JobState.PENDING_HELD, timeout=10)
        assert held.reasons == ("job-hold-until-specified",), held
        assert f"announced {len(data)}" in held.message, held
        attrs = await job_attrs(gateway, job_id)
        assert attrs["job-hold-until"] == ["indefinite"], attrs
        printer = await printer_now(gateway)  # the printer itself is fine: only the job waits
        assert (printer.state, printer.reasons) == (PrinterState.IDLE, ("none",)), printer
        await trio.sleep(1.5)
        assert gateway.attempts(job_id) == 1  # held: not retried
        assert not fake_lpd.completed  # refused before a byte of the data file went

        # The printer still prints other jobs meanwhile.
        other = await submit_to(gateway, b"another job")
        await until_job(gateway, other, JobState.COMPLETED, timeout=10)

        document.write_bytes(data)  # the cause is removed; the operator releases the job
        await operate(gateway, Operation.RELEASE_JOB, {"job-id": (T.INTEGER, job_id)})
        await until_job(gateway, job_id, JobState.COMPLETED, timeout=10)
        assert gateway.attempts(job_id) == 2
        idle = await printer_now(gateway)
        assert (idle.state, idle.reasons) == (PrinterState.IDLE, ("none",)), idle
    assert [bytes(job.data) for job in fake_lpd.completed] == [b"another job", data]


# -- progress: K octets sent, impressions, sheets ----------------------------------------------


async def test_job_k_octets_processed_is_what_the_device_received(tmp_path: Path) -> None:
    out = tmp_path / "out"
    sizes = [100_001, 1024, 1]
    async with gateway_for(tmp_path / "gateway", out.as_uri() + "/") as gateway:
        ids = []
        for n, size in enumerate(sizes):
            ids.append(await submit_to(gateway, payload(size, 40 + n)))
            await until_job(gateway, ids[-1], JobState.COMPLETED, timeout=10)
        for job_id, size in zip(ids, sizes, strict=True):
            attrs = await job_attrs(gateway, job_id)
            received = (out / f"job-{job_id:05d}.prn").stat().st_size
            assert received == size
            assert attrs["job-k-octets-processed"] == [math.ceil(received / 1024)], attrs
            assert attrs["job-k-octets"] == [math.ceil(size / 1024)]
        listed = await operate(gateway, Operation.GET_JOBS, {
            "which-jobs": (T.KEYWORD, "completed"),
            "requested-attributes": (T.KEYWORD, ["job-id", "job-k-octets-processed"])})
        jobs = [plain(g) for g in listed.message.groups if g.tag == GroupTag.JOB]
        got = {job["job-id"][0]: job["job-k-octets-processed"][0] for job in jobs}
        assert got == {job_id: math.ceil(size / 1024)
                       for job_id, size in zip(ids, sizes, strict=True)}
        # Named by job-description too.
        reply = await operate(gateway, Operation.GET_JOB_ATTRIBUTES, {
            "job-id": (T.INTEGER, ids[0]),
            "requested-attributes": (T.KEYWORD, "job-description")})
        assert reply.job["job-k-octets-processed"] == [98]


THREE_PAGES = b"page one\n\fpage two\n\fpage three\n"
PROGRESS_PRINTERS = (PrinterTable("ps", "postscript", duplex=True),
                     PrinterTable("pcl5", "pcl5", duplex=True), PrinterTable("text", "text"))


@pytest.mark.parametrize(("printer", "options", "impressions", "sheets"), [
    ("ps", {}, 3, 3),
    ("ps", {"copies": (T.INTEGER, 3)}, 9, 9),  # the printer makes them (NumCopies)
    ("ps", {"sides": (T.KEYWORD, "two-sided-long-edge")}, 3, 2),
    ("ps", {"sides": (T.KEYWORD, "two-sided-long-edge"), "copies": (T.INTEGER, 2)}, 6, 4),
    ("pcl5", {"copies": (T.INTEGER, 3)}, 9, 9),  # the printer makes them (&l3X)
    ("pcl5", {"sides": (T.KEYWORD, "two-sided-short-edge")}, 3, 2),
    ("text", {"copies": (T.INTEGER, 3)}, 9, 9),  # the gateway sends the text three times
], ids=["ps", "ps-copies", "ps-duplex", "ps-duplex-copies", "pcl-copies", "pcl-duplex",
        "text-copies"])
def test_impressions_sheets_and_octets_of_a_completed_job(
    tmp_path: Path, printer: str, options: AttributeSpec, impressions: int, sheets: int
) -> None:
    """impressions = pages x copies and sheets = ceil(pages / sides) x copies, whoever makes
    the copies; job-k-octets-processed is the output the device received, in K rounded up."""
    with start_configured_gateway(tmp_path, PROGRESS_PRINTERS) as gateway:
        client = IppPrinter(gateway.port, printer)
        job_id = client.submit(THREE_PAGES, "text/plain", options)
        attrs = client.wait_done(job_id, timeout=60)
        received = gateway.output_file(printer, job_id).stat().st_size
    assert attrs["job-state"] == [JobState.COMPLETED], attrs
    assert attrs["job-impressions-completed"] == [impressions], attrs
    assert attrs["job-media-sheets-completed"] == [sheets], attrs
    assert attrs["job-k-octets-processed"] == [math.ceil(received / 1024)], attrs
