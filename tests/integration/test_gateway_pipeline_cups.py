"""A real CUPS client prints to a gateway whose printer is a PCL 5 laser on a p910nd peer:
`lpadmin -m everywhere` builds the queue from our attributes, `lp` sends a PDF and a JPEG,
CUPS shows both completed, and valid PCL 5 arrives at the port 9100 peer."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ippwire.enums import GroupTag, JobState, Operation, ValueTag
from tests.peers import CORPUS_DIR
from tests.peers.cupsd import Cupsd, expected_output_format
from tests.peers.gateway_proc import (
    GatewayProcess,
    PrinterTable,
    start_configured_gateway,
)
from tests.peers.p910nd import P910nd, running_p910nd
from tests.peers.procs import log_tail
from tests.support.ipp_jobs import IppPrinter
from tests.support.pcl_decoder import decode_pcl

pytestmark = pytest.mark.peers

QUEUE = "gwpcl"
DPI = 150
DOCUMENTS = {"application/pdf": CORPUS_DIR / "testpage-1p-vector.pdf",
             "image/jpeg": CORPUS_DIR / "ladybird-2560x1600.jpg"}
COMPLETION_TIMEOUT = 90.0


@pytest.fixture
def laser() -> Iterator[P910nd]:
    """p910nd on 127.0.0.1:910N with a sink that keeps each connection's bytes."""
    with running_p910nd() as server:
        yield server


@pytest.fixture
def pcl_gateway(laser: P910nd, tmp_path_factory: pytest.TempPathFactory
                ) -> Iterator[GatewayProcess]:
    spec = PrinterTable("laser", "pcl5", resolutions=(DPI,), device=laser.uri + "?contimeout=5")
    with start_configured_gateway(tmp_path_factory.mktemp("gateway"), [spec]) as gateway:
        yield gateway


def diagnostics(cupsd: Cupsd, gateway: GatewayProcess) -> str:
    jobs = cupsd.client("lpstat", "-W", "all", "-l", "-o", QUEUE)
    return (f"lpstat:\n{jobs}\ncupsd error_log:\n{log_tail(cupsd.error_log, 30)}\n"
            f"gateway log:\n{log_tail(gateway.log, 30)}")


def test_cups_prints_pdf_and_jpeg_as_pcl_at_the_peer(
    cupsd: Cupsd, pcl_gateway: GatewayProcess, laser: P910nd
) -> None:
    printer = IppPrinter(pcl_gateway.port, "laser")
    ppd = cupsd.add_everywhere_queue(QUEUE, printer.uri)
    ppd_text = ppd.read_text(errors="replace")
    assert f"*DefaultResolution: {DPI}dpi" in ppd_text
    cups_ids = [cupsd.submit(QUEUE, document) for document in DOCUMENTS.values()]

    completed = cupsd.wait_completed(QUEUE, set(cups_ids), COMPLETION_TIMEOUT)

    assert completed == set(cups_ids), diagnostics(cupsd, pcl_gateway)
    sent = sorted(expected_output_format(ppd_text, fmt) for fmt in DOCUMENTS)
    reply = printer.send(Operation.GET_JOBS, {
        "which-jobs": (ValueTag.KEYWORD, "completed"),
        "requested-attributes": (ValueTag.KEYWORD, ["job-state", "document-format",
                                                    "job-impressions-completed"])})
    jobs = [{a.name: a.plain for a in group} for group in reply.message.groups_of(GroupTag.JOB)]
    assert sorted(str(job["document-format"][0]) for job in jobs) == sent, jobs
    assert all(job["job-state"] == [JobState.COMPLETED] for job in jobs), jobs
    assert all(job["job-impressions-completed"] == [1] for job in jobs), jobs
    for index in (1, 2):
        record = laser.wait_record(index)
        assert record.data is not None
        check_pcl(record.data.read_bytes())


def check_pcl(data: bytes) -> None:
    """A PCL 5 raster job: reset, one A4 page of inked 150 dpi raster, reset."""
    assert data.startswith(b"\x1bE") and data.endswith(b"\x1bE"), (data[:40], data[-40:])
    job = decode_pcl(data)
    (page,) = job.pages
    assert b"&l26A" in job.commands
    assert page.resolution == DPI and sum(any(row) for row in page.rows) > 100
