"""Bad documents over IPP, and the gateway's memory on the raster path.

Each bad document (truncated PDF, PWG header with an absurd size, URF with lying lengths, JPEG
bomb, empty file, content that is not its document-format) either gives an aborted job with
`document-format-error` and a job-state-message, or is refused at submit with a status and a
message; the gateway stays up, its memory stays bounded and the next job prints. A 600 dpi A4
colour page through the raster path stays under 64 MB in the gateway process (VmHWM from
/proc; Ghostscript, when it runs, is a separate process and not counted).
"""

from __future__ import annotations

import struct
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from drivers.filters.pwg_raster import SYNC, page_header
from drivers.model.raster import PixelFormat, RasterPage
from ippwire.enums import JobState, Operation, Status, ValueTag
from tests.peers import CORPUS_DIR
from tests.peers.gateway_proc import (
    GatewayProcess,
    PrinterTable,
    start_configured_gateway,
)
from tests.peers.procs import children_of, wait_until
from tests.support.bad_documents import bad_documents
from tests.support.gs_render import render as render_postscript
from tests.support.ipp_jobs import IppPrinter, Reply
from tests.support.pcl_decoder import decode_pcl
from tests.support.pipeline_documents import render

MEMORY_LIMIT_KB = 64 * 1024
# Each case, and a word its job-state-message must contain: the message names the cause.
BAD_CASES = {"truncated-pdf": "pages", "absurd-pwg": "PWG raster", "huge-pwg": "PWG raster",
             "lying-urf": "URF", "overflowing-urf": "bad line lengths", "jpeg-bomb": "bomb",
             "empty": "empty", "mismatch": "image/jpeg"}
BAD_PRINTERS = (PrinterTable("pcl5", "pcl5"), PrinterTable("ps", "postscript"))
GOOD_PDF = CORPUS_DIR / "testpage-1p-vector.pdf"
# Refusals at submit that say what is wrong with the document itself.
DOCUMENT_STATUSES = (Status.CLIENT_ERROR_DOCUMENT_FORMAT_ERROR,
                     Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED)


def huge_pwg() -> bytes:
    """A self-consistent PWG page header (bytes per line match the width) for a page of a
    million by a million pixels at 150 dpi: 3 TB of pixels that must never be allocated."""
    page = RasterPage(1_000_000, 1_000_000, PixelFormat.SGRAY_8, 150, 150)
    return SYNC + page_header(page) + bytes(4096)


def overflowing_urf() -> bytes:
    """An Apple raster page whose lengths lie: a 100-pixel grey line whose first packet repeats
    one pixel 128 times, past the line's end (a decoder trusting it writes out of bounds)."""
    header = b"UNIRAST\0" + struct.pack(">I", 1)
    page = (bytes([8, 0, 1, 4]) + bytes(8) + struct.pack(">III", 100, 2, 300) + bytes(8))
    line = b"\x00" + b"\x7f" + b"\x40"  # line repeat 1; 128 x the pixel 0x40
    return header + page + line * 2


@dataclass
class BadRun:
    gateway: GatewayProcess
    replies: dict[tuple[str, str], Reply] = field(default_factory=dict)  # the bad submission
    next_jobs: dict[tuple[str, str], int] = field(default_factory=dict)  # the good one after


@pytest.fixture(scope="module")
def bad_run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BadRun]:
    """On each printer, every bad document followed at once by a good PDF."""
    documents = bad_documents(tmp_path_factory.mktemp("bad"))
    documents["huge-pwg"] = (huge_pwg(), "image/pwg-raster")
    documents["overflowing-urf"] = (overflowing_urf(), "image/urf")
    gateway = start_configured_gateway(tmp_path_factory.mktemp("gateway"), BAD_PRINTERS)
    try:
        run = BadRun(gateway)
        for spec in BAD_PRINTERS:
            printer = IppPrinter(gateway.port, spec.name)
            for case in BAD_CASES:
                data, fmt = documents[case]
                run.replies[(spec.name, case)] = printer.print_job(data, fmt, name=case)
                run.next_jobs[(spec.name, case)] = printer.submit(GOOD_PDF.read_bytes(),
                                                                  "application/pdf")
        yield run
    finally:
        gateway.stop()


@pytest.mark.parametrize("case", BAD_CASES)
@pytest.mark.parametrize("printer", [spec.name for spec in BAD_PRINTERS])
def test_bad_document_aborts_with_a_message(bad_run: BadRun, printer: str, case: str) -> None:
    reply = bad_run.replies[(printer, case)]
    client = IppPrinter(bad_run.gateway.port, printer)
    if reply.status != Status.OK:  # refused at submit: a document status and why
        assert reply.status in DOCUMENT_STATUSES and reply.status_message, reply
        return
    attrs = client.wait_done(reply.job_id)
    assert attrs["job-state"] == [JobState.ABORTED], attrs
    assert "document-format-error" in attrs["job-state-reasons"], attrs
    message = str(attrs["job-state-message"][0])
    assert BAD_CASES[case].lower() in message.lower(), attrs
    assert not bad_run.gateway.output_file(printer, reply.job_id).exists()


@pytest.mark.parametrize("case", BAD_CASES)
@pytest.mark.parametrize("printer", [spec.name for spec in BAD_PRINTERS])
def test_the_next_job_prints(bad_run: BadRun, printer: str, case: str) -> None:
    job_id = bad_run.next_jobs[(printer, case)]
    attrs = IppPrinter(bad_run.gateway.port, printer).wait_done(job_id)
    assert attrs["job-state"] == [JobState.COMPLETED], attrs
    assert attrs["job-impressions-completed"] == [1]
    assert bad_run.gateway.output_file(printer, job_id).stat().st_size > 1000


def test_gateway_survives_with_bounded_memory(bad_run: BadRun) -> None:
    for (printer, _), job_id in bad_run.next_jobs.items():
        IppPrinter(bad_run.gateway.port, printer).wait_done(job_id)
    assert bad_run.gateway.alive()
    peak = bad_run.gateway.memory_kb()
    assert peak < MEMORY_LIMIT_KB, f"gateway peak RSS {peak // 1024} MB after the bad documents"


def test_cancel_stops_ghostscript_and_the_next_job_prints(bad_run: BadRun) -> None:
    """Cancel-Job while Ghostscript renders an 87-page PDF: the job is canceled, its
    Ghostscript process is gone, no partial output is left, and the printer goes on."""
    gateway = bad_run.gateway
    for (printer, _), job_id in bad_run.next_jobs.items():
        IppPrinter(gateway.port, printer).wait_done(job_id)
    client = IppPrinter(gateway.port, "pcl5")
    job_id = client.submit((CORPUS_DIR / "bash-87p-text.pdf").read_bytes(), "application/pdf")
    deadline = time.monotonic() + 30
    while client.job(job_id)["job-impressions-completed"] == [0]:  # until a page is out
        assert time.monotonic() < deadline, client.job(job_id)
        time.sleep(0.02)
    assert children_of(gateway.pid), "Ghostscript should still be rendering"
    reply = client.send(Operation.CANCEL_JOB, {"job-id": (ValueTag.INTEGER, job_id)})
    assert reply.status == Status.OK, reply
    attrs = client.wait_done(job_id)
    assert attrs["job-state"] == [JobState.CANCELED], attrs
    wait_until(lambda: not children_of(gateway.pid), 10, "Ghostscript to be killed")
    # The job shows canceled at once; the worker then aborts the transfer, which removes
    # the partial output.
    wait_until(lambda: not list(gateway.printer_output("pcl5").glob(f"job-{job_id:05d}.prn*")), 10,
               "the partial output to be removed")
    next_job = client.submit(GOOD_PDF.read_bytes(), "application/pdf")
    assert client.wait_done(next_job)["job-state"] == [JobState.COMPLETED]


# -- a 600 dpi A4 colour page ------------------------------------------------------------------

MEMORY_PRINTERS = (PrinterTable("ps600", "postscript", resolutions=(600,), color=True),
                   PrinterTable("pcl600", "pcl5", resolutions=(600,)))
RASTER_PAGES = {"image/pwg-raster": ("pwgraster", "page-600.pwg"),
                "image/urf": ("urf", "page-600.urf")}


@pytest.fixture(scope="module")
def colour_pages_600(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The vector test page as 600 dpi sRGB 8-bit raster, in each raster format."""
    tmp = tmp_path_factory.mktemp("raster600")
    pages = {fmt: render(tmp / name, device, GOOD_PDF, 600, "-dcupsColorSpace=19",
                         "-dcupsBitsPerColor=8") for fmt, (device, name) in RASTER_PAGES.items()}
    pages["image/jpeg"] = CORPUS_DIR / "ladybird-2560x1600.jpg"  # scaled to the page at 600 dpi
    return pages


@pytest.fixture(scope="module")
def memory_gateway(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    gateway = start_configured_gateway(tmp_path_factory.mktemp("gateway600"), MEMORY_PRINTERS)
    try:
        yield gateway
    finally:
        gateway.stop()


def raster_size(fmt: str, path: Path) -> tuple[int, int]:
    """Width and height in pixels of the first page (PWG 5102.4 cupsWidth/cupsHeight, or the
    URF page header's width and height)."""
    with path.open("rb") as file:
        head = file.read(4 + 380)
    offset = 4 + 372 if fmt == "image/pwg-raster" else 12 + 12
    width, height = struct.unpack_from(">II", head, offset)
    return int(width), int(height)


def check_output(printer: str, data: bytes, size: tuple[int, int] | None) -> None:
    """Valid output for the page; `size` is the raster's own (None for a photo, which the
    gateway scales to the page itself)."""
    if printer == "ps600":
        if size is not None:
            assert b"/DeviceRGB setcolorspace" in data
            assert b"/Width %d /Height %d " % size in data
        (rendered,) = render_postscript(data, dpi=18)
        assert abs(rendered.width_pt - 595) <= 4 and abs(rendered.height_pt - 842) <= 4
    else:
        job = decode_pcl(data)
        (page,) = job.pages
        assert page.resolution == 600
        if size is not None:
            assert b"*r%dT" % size[1] in job.commands
        assert sum(any(row) for row in page.rows) > 1000  # inked rows, dithered from colour


@pytest.mark.parametrize("printer, fmt", [("ps600", "image/pwg-raster"),
                                          ("pcl600", "image/pwg-raster"),
                                          ("ps600", "image/urf"),
                                          ("pcl600", "image/urf"),
                                          ("ps600", "image/jpeg"),
                                          ("pcl600", "image/jpeg")])
def test_600_dpi_colour_page_stays_under_64_mb(
    memory_gateway: GatewayProcess, colour_pages_600: dict[str, Path], printer: str,
    fmt: str
) -> None:
    idle = memory_gateway.memory_kb("VmRSS")
    client = IppPrinter(memory_gateway.port, printer)
    job_id = client.submit(colour_pages_600[fmt].read_bytes(), fmt)
    attrs = client.wait_done(job_id)
    peak = memory_gateway.memory_kb()
    assert attrs["job-state"] == [JobState.COMPLETED], attrs
    assert attrs["job-impressions-completed"] == [1]
    data = memory_gateway.output_file(printer, job_id).read_bytes()
    size = None if fmt == "image/jpeg" else raster_size(fmt, colour_pages_600[fmt])
    check_output(printer, data, size)
    assert peak < MEMORY_LIMIT_KB, f"peak RSS {peak // 1024} MB (before the job {idle // 1024})"
