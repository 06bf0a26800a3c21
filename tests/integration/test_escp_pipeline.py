"""ESC/P printers through the real pipeline: a corpus PDF and the corpus text file printed by
`print_document` into a file transport, and the output read back by the test-side decoder
(tests/support/escp_decoder.py, written from Epson's manual, not from our writer).

- PDF: every dot the printer would make is Ghostscript's own 1-bit rendering of the page at
  the mode's resolution (gs -sDEVICE=pbmraw -rXxY on the same media, fitted the same way),
  pixel for pixel, less only what the printer cannot print: columns past its carriage and,
  on ESC/P 2, rows above the top margin it is given.
- Text: the lines are the file's lines wrapped at the page width, the pages are full or end
  at a form feed, and each page is as long as the sheet.
- Over IPP: a gateway with an ESC/P printer prints a PDF Print-Job into decodable ESC/P, and
  answers ipptool's conformance suites.
"""

from __future__ import annotations

import math
import re
import time
from pathlib import Path

import pytest
import trio

from drivers.languages.escp import MODELS, EscpModel
from drivers.model.capabilities import MEDIA_SIZES, Capabilities, PrintOptions
from drivers.registry import get_driver
from ippwire.enums import GroupTag, JobState, Operation
from ippwire.model import IntRange
from tests.peers import CORPUS_DIR as CORPUS
from tests.peers.conformance import ConformanceDir
from tests.peers.gateway_proc import PrinterTable, start_command_line, start_configured_gateway
from tests.peers.require import require_programs
from tests.peers.suites import EVERYWHERE_FIXED
from tests.support.driver_printing import Document, print_to_file, pwg_pages
from tests.support.escp_decoder import EscpJob, decode_escp
from tests.support.ipp_jobs import IppPrinter, T, completed

# A multi-page PDF of text and halftoned photographs (US Letter), two of its pages.
MIXED_PDF = Document(CORPUS / "gs9-colormgmt-42p-mixed.pdf", "application/pdf", 42)
TEXT_PDF = Document(CORPUS / "bash-87p-text.pdf", "application/pdf", 87)
GPL = Document(CORPUS / "gpl-3.txt", "text/plain", 11)
PAGES = (3, 4)


def decode(data: bytes, model: EscpModel, quality: int) -> EscpJob:
    mode = model.mode(quality)
    return decode_escp(data, model.kind, (mode.dpi_x, mode.dpi_y), model.printable_width_in,
                       model.text_columns)


async def ghostscript_pages(document: Path, dpi: tuple[int, int], media: str, first: int,
                            last: int) -> list[tuple[int, int, list[bytes]]]:
    """Ghostscript's own 1-bit rendering: (width, height, rows) a page. The page size is the
    media's in whole points and the page is fitted to it, as the pipeline asks."""
    size = MEDIA_SIZES[media]
    with trio.fail_after(120):
        result = await trio.run_process(
            ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-dNOINTERPOLATE",
             "-sDEVICE=pbmraw", "-sstdout=%stderr", f"-r{dpi[0]}x{dpi[1]}", "-dFIXEDMEDIA",
             f"-dDEVICEWIDTHPOINTS={int(size.width_points)}",
             f"-dDEVICEHEIGHTPOINTS={int(size.height_points)}", "-dPDFFitPage",
             f"-sPageList={first}-{last}", "-sOutputFile=-", str(document)],
            capture_stdout=True, capture_stderr=True)
    pages = []
    data = result.stdout
    while data:
        header = re.match(rb"P4\s+(?:#[^\n]*\n\s*)*(\d+)\s+(\d+)\s", data)
        assert header is not None, data[:40]
        width, height = int(header[1]), int(header[2])
        size_bytes = (width + 7) // 8
        body = data[header.end() : header.end() + size_bytes * height]
        pages.append((width, height, [body[i * size_bytes : (i + 1) * size_bytes]
                                      for i in range(height)]))
        data = data[header.end() + size_bytes * height :]
    return pages


def printable(rows: list[bytes], width: int, dots: int, blank_top: int) -> list[bytes]:
    """The rows as the printer can print them: cut at `dots` columns (the carriage), the
    padding bits of the last byte cleared, the first `blank_top` rows left white."""
    dots = min(width, dots)
    size = (dots + 7) // 8
    mask = (0xFF00 >> (dots % 8 or 8)) & 0xFF
    out = []
    for number, row in enumerate(rows):
        row = row[:size]
        out.append(bytes(size) if number < blank_top else row[:-1] + bytes([row[-1] & mask]))
    return out


# Each model in its draft and its best mode, and the 9-pin and 24-pin normal ones.
MODES = [("escp-9pin", 3), ("escp-9pin", 4), ("escp-9pin", 5), ("escp-24pin", 4),
         ("escp-24pin", 5), ("escp2", 3), ("escp2", 5)]


@pytest.mark.parametrize(("name", "quality"), MODES)
@pytest.mark.parametrize(("document", "media"), [(MIXED_PDF, "na_letter_8.5x11in"),
                                                 (TEXT_PDF, "iso_a4_210x297mm")])
async def test_pdf_prints_ghostscripts_own_dots(name: str, quality: int, document: Document,
                                                media: str, tmp_path: Path) -> None:
    require_programs("gs")
    driver, model = get_driver(name), MODELS[name]
    mode = model.mode(quality)
    options = PrintOptions(print_quality=quality, media=media, page_ranges=(PAGES,))
    data, progress = await print_to_file(document, driver, driver.capabilities,
                                         tmp_path / "out.escp", options)
    job = decode(data, model, quality)
    reference = await ghostscript_pages(document.path, (mode.dpi_x, mode.dpi_y), media, *PAGES)
    assert len(job.pages) == len(reference) == progress.pages == 2
    assert job.resets == 2 and data.startswith(b"\x1b@") and data.endswith(b"\x0c\x1b@")
    # ESC/P 2 prints from the top margin down (caps.margins[0], 1/100 mm), 9/24-pin printers
    # from the top-of-form.
    top_pt = driver.capabilities.margins[0] * 72 / 2540 if model.kind == "escp2" else 0
    blank_top = math.ceil(top_pt / 72 * mode.dpi_y)
    dots = int(model.printable_width_in * mode.dpi_x)
    for page, (width, height, rows) in zip(job.pages, reference, strict=True):
        want = printable(rows, width, dots, blank_top)
        assert sum(map(any, want)) > height // 20  # pages with ink on them
        assert page.bitmap(min(width, dots), height) == want
        assert MEDIA_SIZES[media].height_points / 72 <= page.length < (
            MEDIA_SIZES[media].height_points / 72 + 0.02)


def gpl_pages(columns: int, lines: int, text: str) -> list[list[str]]:
    """The text as pages of lines: tabs every 8, each line wrapped at `columns`, `lines` a
    page, a form feed ending its page (no blank page after a full one)."""
    pages: list[list[str]] = []
    page: list[str] = []
    full = False
    for chunk_number, chunk in enumerate(text.split("\f")):
        if chunk_number:
            if not full:
                pages.append(page)
            page, full = [], False
        pieces = chunk.split("\n")
        if pieces[-1] == "":
            pieces.pop()  # the line feed ending the chunk's last line
        for raw in pieces:
            line = raw.expandtabs(8).rstrip()
            for wrapped in [line[i : i + columns] for i in range(0, len(line), columns)] or [""]:
                page.append(wrapped.rstrip())
                full = False
                if len(page) == lines:
                    pages.append(page)
                    page, full = [], True
    if page:
        pages.append(page)
    return pages


@pytest.mark.parametrize(("name", "quality", "media", "columns", "lines", "page_lines"), [
    # The shared layout: 1/4" margins, 10 cpi, 6 lpi; an A4 page is 70 lines (11 2/3").
    ("escp-24pin", 4, "iso_a4_210x297mm", 77, 67, 70),
    ("escp-9pin", 3, "na_letter_8.5x11in", 80, 63, 66),
    ("escp2", 5, "na_legal_8.5x14in", 80, 81, 84),
])
async def test_text_prints_line_for_line(name: str, quality: int, media: str, columns: int,
                                         lines: int, page_lines: int, tmp_path: Path) -> None:
    driver, model = get_driver(name), MODELS[name]
    text = GPL.path.read_text()
    assert "\f" not in text
    # Form feeds: after a short page, after a run of blank lines, and after a full page.
    head, rest = text.split("\n", 30)[:30], text.split("\n", 30)[30]
    documented = "\n".join(head) + "\n\f" + "\n" * 5 + "\f" + "x\n" * lines + "\f" + rest
    source = tmp_path / "gpl-with-form-feeds.txt"
    source.write_text(documented)
    options = PrintOptions(print_quality=quality, media=media)
    data, progress = await print_to_file(Document(source, "text/plain", 0), driver,
                                         driver.capabilities, tmp_path / "out.escp", options)
    job = decode(data, model, quality)
    want = gpl_pages(columns, lines, documented)
    assert len(job.pages) == len(want) == progress.pages > 10
    assert len(want[0]) < lines and want[1] == [""] * 5 and want[2] == ["x"] * lines
    for page, lines_wanted in zip(job.pages, want, strict=True):
        top = 2  # the 1/4" top margin: 1.5 lines, rounded
        assert page.text[:top] == ["", ""]
        assert page.text[top:] == lines_wanted
        assert page.length * 6 == page_lines
    assert b"GNU GENERAL PUBLIC LICENSE" in data
    quality_command = job.state["ESC x"]
    assert quality_command == (1 if model.mode(quality).letter_quality else 0)


async def test_uncollated_copies_repeat_each_page(tmp_path: Path) -> None:
    """ESC/P has no copy count: each page is sent again, in place (1, 1, 2, 2)."""
    driver, model = get_driver("escp-24pin"), MODELS["escp-24pin"]
    options = PrintOptions(copies=2, collate=False, page_ranges=((5, 6),))
    data, progress = await print_to_file(TEXT_PDF, driver, driver.capabilities,
                                         tmp_path / "copies.escp", options)
    pages = decode(data, model, 4).pages
    assert len(pages) == 4 and pages[0].dots == pages[1].dots != pages[2].dots == pages[3].dots
    assert progress.pages * progress.copies_each == 4
    once, _ = await print_to_file(TEXT_PDF, driver, driver.capabilities, tmp_path / "one.escp",
                                  PrintOptions(page_ranges=((5, 6),)))
    assert [p.dots for p in decode(once, model, 4).pages] == [pages[0].dots, pages[2].dots]


async def test_pwg_raster_at_the_nominal_resolution_prints(tmp_path: Path) -> None:
    """A 1-bit PWG page sent at the advertised 180 dpi to a 24-pin printer in draft (120x180
    dpi): resampled across, row for row down. No ink is lost (each inked pixel has a dot
    within one column of where it falls) and none is invented."""
    require_programs("gs")
    pwg = tmp_path / "page.pwg"
    with trio.fail_after(60):
        await trio.run_process(
            ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pwgraster", "-r180",
             "-sPAPERSIZE=a4", "-dFIXEDMEDIA", "-dcupsColorSpace=3", "-dcupsBitsPerColor=1",
             f"-sOutputFile={pwg}", str(CORPUS / "testpage-1p-vector.pdf")],
            capture_stdout=True, capture_stderr=True)
    driver, model = get_driver("escp-24pin"), MODELS["escp-24pin"]
    assert 180 in driver.capabilities.resolutions
    data, _ = await print_to_file(Document(pwg, "image/pwg-raster", 1), driver,
                                  driver.capabilities, tmp_path / "out.escp",
                                  PrintOptions(print_quality=3))
    (page,) = decode(data, model, 3).pages
    (rows,) = pwg_pages(pwg)
    carriage = 180 * 8  # source columns under the 8" carriage
    source = {(r, c) for r, row in enumerate(rows) for c in range(min(len(row) * 8, carriage))
              if row[c >> 3] & 0x80 >> (c & 7)}
    assert len(source) > 10_000
    near = (-1, 0, 1)
    assert all(any((r, c * 2 // 3 + d) in page.dots for d in near) for r, c in source)
    assert all(any((r, (j * 3 + d) // 2) in source for d in (-2, -1, 0, 1, 2, 3, 4))
               for r, j in page.dots)


def test_a_text_page_that_cannot_fit_is_refused_before_printing() -> None:
    """Named in Validate-Job's answer rather than failing the job: a landscape line is past
    the carriage (and the printer's font does not turn), and so is a Ledger-wide one."""
    driver = get_driver("escp2")
    caps: Capabilities = driver.capabilities
    landscape = PrintOptions(orientation=4)
    assert driver.unsupported_options("text/plain", caps, landscape) == [
        "orientation-requested"]
    assert driver.unsupported_options("application/pdf", caps, landscape) == []
    wide = caps.with_changes(media=(*caps.media, MEDIA_SIZES["na_ledger_11x17in"]))
    assert driver.unsupported_options("text/plain", wide,
                                      PrintOptions(media="na_ledger_11x17in")) == ["media"]


# -- over IPP ----------------------------------------------------------------------------------


@pytest.mark.peers
def test_gateway_prints_a_pdf_job_as_escp(tmp_path: Path) -> None:
    """`--printer NAME=file:///DIR/,driver=escp-24pin`: what the printer advertises, and a
    PDF Print-Job at print-quality 5 arriving as ESC/P in hex density."""
    require_programs("gs")
    output = tmp_path / "gateway" / "output"
    output.mkdir(parents=True)
    printer_arg = f"dots={output.as_uri()}/,driver=escp-24pin"
    with start_command_line(tmp_path / "gateway", ["--printer", printer_arg],
                            printer_name="dots") as gateway:
        printer = IppPrinter(gateway.port, "dots")
        attrs = printer.attributes("document-format-supported", "printer-make-and-model",
                                   "print-quality-supported", "sides-supported",
                                   "print-color-mode-supported")
        assert "application/pdf" in attrs["document-format-supported"]
        assert "application/vnd.hp-PCL" not in attrs["document-format-supported"]
        assert attrs["printer-make-and-model"] == ["Generic ESC/P 24-pin Dot-Matrix Printer"]
        assert attrs["print-quality-supported"] == [3, 4, 5]
        assert attrs["sides-supported"] == ["one-sided"]
        assert "color" not in attrs["print-color-mode-supported"]
        job_id = printer.submit(TEXT_PDF.path.read_bytes(), "application/pdf", {
            "page-ranges": (T.RANGE_OF_INTEGER, [IntRange(1, 1)]),
            "print-quality": (T.ENUM, 5)})
        done = printer.wait_done(job_id)
        assert completed(done), done
        (printed,) = gateway.output_files()
        job = decode(printed.read_bytes(), MODELS["escp-24pin"], 5)
        assert len(job.pages) == 1 and len(job.pages[0].dots) > 10_000
        assert job.state["ESC *"] == 40  # hex density: print-quality 5


@pytest.mark.peers
@pytest.mark.parametrize("suite", ["ipp-1.1.test", "ipp-2.0.test"])
def test_escp_printer_passes_ipptool(suite: str, conformance_dir: ConformanceDir,
                                     tmp_path: Path) -> None:
    """CUPS's own IPP/1.1 and IPP/2.0 suites (Get-Printer-Attributes' required attributes,
    a PDF Print-Job among them) against an ESC/P printer."""
    printers = (PrinterTable("dots", "escp2", resolutions=()),)
    with start_configured_gateway(tmp_path / "gateway", printers) as gateway:
        run = conformance_dir.run(gateway.printer_uri, suite)
        context = f"{run.describe_failures()}\n(log: {gateway.log})"
        assert not run.errors and run.outcomes and run.failures == [], context


@pytest.mark.peers
@pytest.mark.slow
def test_escp_printer_passes_ipp_everywhere(conformance_dir: ConformanceDir,
                                           tmp_path: Path) -> None:
    """ipp-everywhere.test (its one known-wrong expectation corrected): the attributes, and
    every PWG raster sample at the nominal resolutions printed (resampled to the mode's)."""
    printers = (PrinterTable("dots", "escp-24pin", resolutions=()),)
    with start_configured_gateway(tmp_path / "gateway", printers) as gateway:
        plan = conformance_dir.plan_for(gateway.printer_uri)
        assert set(plan.capabilities.resolutions) == {180, 360}
        assert plan.print_tests, plan.capabilities
        run = conformance_dir.run(gateway.printer_uri, EVERYWHERE_FIXED)
        context = f"{run.describe_failures()}\n(log: {gateway.log})"
        assert not run.errors and run.outcomes and run.failures == [], context
        passed = {outcome.name for outcome in run.outcomes if outcome.status == "PASS"}
        assert set(plan.print_tests) <= passed, context
        states = job_states(IppPrinter(gateway.port, "dots"))
        # The suite cancels a few jobs itself; every other one printed.
        assert set(states.values()) <= {JobState.COMPLETED, JobState.CANCELED}, states
        printed = [job for job, state in states.items() if state == JobState.COMPLETED]
        assert len(printed) >= len(plan.print_tests)
        for job in printed:  # each job decodes as ESC/P at the default print-quality
            output = gateway.output_file("dots", job).read_bytes()
            assert decode(output, MODELS["escp-24pin"], 4).pages


def job_states(printer: IppPrinter, timeout: float = 300.0) -> dict[int, int]:
    """Every job's state by its id, once none is left to print (Get-Jobs)."""
    deadline = time.monotonic() + timeout
    while True:
        reply = printer.send(Operation.GET_JOBS, {"which-jobs": (T.KEYWORD, "not-completed")})
        if not reply.message.groups_of(GroupTag.JOB):
            break
        assert time.monotonic() < deadline, "jobs still printing"
        time.sleep(0.2)
    reply = printer.send(Operation.GET_JOBS, {
        "which-jobs": (T.KEYWORD, "completed"),
        "requested-attributes": (T.KEYWORD, ["job-id", "job-state"])})
    states = {}
    for group in reply.message.groups_of(GroupTag.JOB):
        job, state = group.get("job-id"), group.get("job-state")
        assert job is not None and state is not None
        assert isinstance(job.value, int) and isinstance(state.value, int)
        states[job.value] = state.value
    return states
