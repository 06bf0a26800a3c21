"""Job options over IPP reach the paper: copies, sides, page-ranges, print-color-mode and media
are found in the PostScript, PCL 5 and PCL XL the gateway writes; an option a printer (or the
conversion of this format) cannot do is refused with ipp-attribute-fidelity true, or reported
in the unsupported group and left out of the output with fidelity false."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from ippwire.enums import JobState, Operation, Status, ValueTag
from ippwire.model import IntRange, Resolution, Value
from ippwire.writer import AttributeSpec
from tests.peers import CORPUS_DIR
from tests.peers.gateway_proc import (
    GatewayProcess,
    PrinterTable,
    start_configured_gateway,
)
from tests.support.driver_printing import pwg_pages
from tests.support.gs_render import RenderedPage, render
from tests.support.ipp_jobs import Attrs, IppPrinter, Reply
from tests.support.pcl_decoder import PclJob, decode_pcl
from tests.support.pclxl_decoder import decode_pclxl
from tests.support.pipeline_documents import PDF, POSTSCRIPT, Sample, make_samples
from tests.support.pipeline_documents import render as render_with_gs

T = ValueTag
DPI = 150
PRINTERS = (PrinterTable("ps", "postscript"), PrinterTable("pcl5", "pcl5"),
            PrinterTable("pcl5duplex", "pcl5", duplex=True), PrinterTable("pclxl", "pclxl"),
            PrinterTable("text", "text"), PrinterTable("pcl5res", "pcl5", resolutions=(150, 300)),
            PrinterTable("psres", "postscript", resolutions=(150, 300)))


def ranges(*pairs: tuple[int, int]) -> tuple[int, list[Value]]:
    return (T.RANGE_OF_INTEGER, [IntRange(lo, hi) for lo, hi in pairs])


# key -> (printer, sample, job template attributes); every job is expected to complete.
JOBS: dict[str, tuple[str, str, AttributeSpec]] = {
    "ps-copies": ("ps", "pdf", {"copies": (T.INTEGER, 2)}),
    "ps-duplex": ("ps", "pwg", {"sides": (T.KEYWORD, "two-sided-short-edge")}),
    "ps-simplex": ("ps", "pwg", {"sides": (T.KEYWORD, "one-sided")}),
    "ps-ranges-pdf": ("ps", "pdf-87", {"page-ranges": ranges((2, 3), (86, 86))}),
    "ps-ranges-ps": ("ps", "ps", {"page-ranges": ranges((2, 3), (38, 38))}),
    "ps-mono-pdf": ("ps", "pdf", {"print-color-mode": (T.KEYWORD, "monochrome")}),
    "ps-color-pdf": ("ps", "pdf", {"print-color-mode": (T.KEYWORD, "color")}),
    "ps-mono-ps": ("ps", "ps-colour", {"print-color-mode": (T.KEYWORD, "monochrome")}),
    "ps-color-ps": ("ps", "ps-colour", {"print-color-mode": (T.KEYWORD, "color")}),
    "ps-mono-raster": ("ps", "pwg-rgb", {"print-color-mode": (T.KEYWORD, "monochrome")}),
    "ps-color-raster": ("ps", "pwg-rgb", {"print-color-mode": (T.KEYWORD, "color")}),
    "ps-a5": ("ps", "jpeg", {"media": (T.KEYWORD, "iso_a5_148x210mm")}),
    "pcl-copies": ("pcl5", "text", {"copies": (T.INTEGER, 3), "multiple-document-handling": (
        T.KEYWORD, "separate-documents-uncollated-copies")}),
    "pcl-long-edge": ("pcl5duplex", "pdf", {"sides": (T.KEYWORD, "two-sided-long-edge")}),
    "pcl-short-edge": ("pcl5duplex", "pwg", {"sides": (T.KEYWORD, "two-sided-short-edge")}),
    "pcl-ranges": ("pcl5", "ps", {"page-ranges": ranges((5, 6), (39, 39))}),
    "pcl-raster-range": ("pcl5", "pwg", {"page-ranges": ranges((2, 2))}),
    "pxl-copies-duplex": ("pclxl", "pdf", {"copies": (T.INTEGER, 2),
                                           "sides": (T.KEYWORD, "two-sided-long-edge"),
                                           "multiple-document-handling": (
                                               T.KEYWORD, "separate-documents-uncollated-copies")}),
    "text-copies": ("text", "text", {"copies": (T.INTEGER, 2)}),
    "ps-landscape-pdf": ("ps", "pdf", {"orientation-requested": (T.ENUM, 4)}),
    "ps-landscape-ps": ("ps", "ps", {"orientation-requested": (T.ENUM, 5),
                                     "page-ranges": ranges((1, 1))}),
    "ps-portrait-ps": ("ps", "ps", {"page-ranges": ranges((1, 1))}),
    "pcl-landscape-pdf": ("pcl5", "pdf", {"orientation-requested": (T.ENUM, 4)}),
    "pcl-300dpi": ("pcl5res", "pdf", {"printer-resolution": (T.RESOLUTION,
                                                            Resolution(300, 300))}),
    "pcl-150dpi": ("pcl5res", "pdf", {"printer-resolution": (T.RESOLUTION,
                                                            Resolution(150, 150))}),
    "pcl-draft": ("pcl5res", "pdf", {"print-quality": (T.ENUM, 3)}),
    "pcl-high": ("pcl5res", "pdf", {"print-quality": (T.ENUM, 5)}),
    "ps-300dpi": ("psres", "pdf", {"printer-resolution": (T.RESOLUTION, Resolution(300, 300))}),
    "ps-letter-pwg": ("ps", "pwg-rgb", {"media": (T.KEYWORD, "na_letter_8.5x11in")}),
    "pcl-letter-urf": ("pcl5", "urf", {"media": (T.KEYWORD, "na_letter_8.5x11in")}),
}

# Options a printer cannot do: (printer, sample, the attribute and its value).
UNSUPPORTED: dict[str, tuple[str, str, AttributeSpec]] = {
    "sides-on-simplex": ("pcl5", "pdf", {"sides": (T.KEYWORD, "two-sided-long-edge")}),
    "colour-on-mono": ("pcl5", "pwg-rgb", {"print-color-mode": (T.KEYWORD, "color")}),
    "ranges-of-a-photo": ("ps", "jpeg", {"page-ranges": ranges((1, 1))}),
    "sides-on-text": ("text", "text", {"sides": (T.KEYWORD, "two-sided-long-edge")}),
    "landscape-of-a-raster": ("ps", "urf", {"orientation-requested": (T.ENUM, 4)}),
    "landscape-on-text": ("text", "text", {"orientation-requested": (T.ENUM, 4)}),
    "fill-a-pdf": ("ps", "pdf", {"print-scaling": (T.KEYWORD, "fill")}),
}


@dataclass
class OptionRun:
    gateway: GatewayProcess
    samples: dict[str, Sample]
    jobs: dict[str, int] = field(default_factory=dict)
    relaxed: dict[str, Reply] = field(default_factory=dict)  # unsupported, fidelity false

    def output(self, key: str) -> tuple[Attrs, bytes]:
        printer = JOBS[key][0] if key in JOBS else UNSUPPORTED[key][0]
        job_id = self.jobs[key]
        attrs = IppPrinter(self.gateway.port, printer).wait_done(job_id)
        assert attrs["job-state"] == [JobState.COMPLETED], attrs
        return attrs, self.gateway.output_file(printer, job_id).read_bytes()


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> Iterator[OptionRun]:
    tmp = tmp_path_factory.mktemp("samples")
    samples = make_samples(tmp, DPI)
    samples["pdf-87"] = Sample("pdf-87", CORPUS_DIR / "bash-87p-text.pdf", PDF, 87)
    colour_ps = render_with_gs(tmp / "colour.ps", "ps2write", samples["pdf"].path, 72)
    samples["ps-colour"] = Sample("ps-colour", colour_ps, POSTSCRIPT, 1)  # 650 KB, colour bars
    gateway = start_configured_gateway(tmp_path_factory.mktemp("gateway"), PRINTERS)
    try:
        options = OptionRun(gateway, samples)
        for key, (printer, name, attrs) in JOBS.items():
            sample = samples[name]
            options.jobs[key] = IppPrinter(gateway.port, printer).submit(
                sample.read(), sample.fmt, attrs)
        for key, (printer, name, attrs) in UNSUPPORTED.items():
            sample = samples[name]
            reply = IppPrinter(gateway.port, printer).print_job(sample.read(), sample.fmt,
                                                                attrs, fidelity=False)
            options.relaxed[key] = reply
            if reply.status == Status.OK_IGNORED_OR_SUBSTITUTED:
                options.jobs[key] = reply.job_id
        yield options
    finally:
        gateway.stop()


def postscript_pages(data: bytes, device: str = "pgmraw") -> list[RenderedPage]:
    return render(data, dpi=18, device=device)


def is_gray(page: RenderedPage) -> bool:
    return all(line[i] == line[i + 1] == line[i + 2]
               for line in page.lines for i in range(0, len(line), 3))


# -- copies ------------------------------------------------------------------------------------


def test_postscript_copies(run: OptionRun) -> None:
    attrs, data = run.output("ps-copies")
    assert b"<< /NumCopies 2 /Collate true >> setpagedevice" in data
    assert len(postscript_pages(data)) == 2  # Ghostscript honours NumCopies as a printer would
    assert attrs["copies"] == [2]


def test_pcl_copies(run: OptionRun) -> None:
    _, data = run.output("pcl-copies")
    job = decode_pcl(data)
    assert job.commands[:2] == [b"E", b"&l3X"]
    assert len(job.pages) == 11  # the printer makes the copies, the job is sent once


def test_pclxl_copies_and_duplex(run: OptionRun) -> None:
    _, data = run.output("pxl-copies-duplex")
    (page,) = decode_pclxl(data).pages
    assert page.copies == 2
    assert page.duplex == 1  # eDuplexVerticalBinding: long edge on a portrait page


def test_text_printer_repeats_the_document_for_copies(run: OptionRun) -> None:
    _, data = run.output("text-copies")
    once = run.samples["text"].read().replace(b"\n", b"\r\n") + b"\f"
    assert data == once * 2


# -- sides -------------------------------------------------------------------------------------


def test_postscript_sides(run: OptionRun) -> None:
    _, duplex = run.output("ps-duplex")
    _, simplex = run.output("ps-simplex")
    assert b"<< /Duplex true /Tumble true >> setpagedevice" in duplex
    assert b"<< /Duplex false >> setpagedevice" in simplex and b"/Duplex true" not in simplex
    assert len(postscript_pages(duplex)) == 2


@pytest.mark.parametrize("key, code", [("pcl-long-edge", b"&l1S"), ("pcl-short-edge", b"&l2S")])
def test_pcl_sides(run: OptionRun, key: str, code: bytes) -> None:
    _, data = run.output(key)
    job = decode_pcl(data)
    assert job.commands[:2] == [b"E", code]
    assert len(job.pages) == run.samples[JOBS[key][1]].pages


# -- page-ranges -------------------------------------------------------------------------------




@pytest.mark.parametrize("key", ["ps-ranges-pdf", "ps-ranges-ps"])
def test_postscript_page_ranges(run: OptionRun, key: str) -> None:
    attrs, data = run.output(key)
    assert len(postscript_pages(data)) == 3
    assert attrs["job-impressions-completed"] == [3]


def test_pcl_page_ranges(run: OptionRun) -> None:
    attrs, data = run.output("pcl-ranges")
    assert len(decode_pcl(data).pages) == 3
    assert attrs["job-impressions-completed"] == [3]


def test_pcl_raster_page_range_is_that_page(run: OptionRun) -> None:
    _, data = run.output("pcl-raster-range")
    (decoded,) = decode_pcl(data).pages
    crop = round(71 * DPI / 300 / 8)  # PCL's logical page starts 71/300 inch in on A4
    first, second = pwg_pages(run.samples["pwg"].path)
    wanted = [row[crop:] for row in second]
    assert decoded.rows == wanted[: len(decoded.rows)]
    assert decoded.rows != [row[crop:] for row in first][: len(decoded.rows)]


# -- print-color-mode and media ----------------------------------------------------------------


@pytest.mark.parametrize("source", ["pdf", "ps"])
def test_postscript_monochrome(run: OptionRun, source: str) -> None:
    _, mono = run.output(f"ps-mono-{source}")
    _, colour = run.output(f"ps-color-{source}")
    (mono_page,) = postscript_pages(mono, device="ppmraw")
    (colour_page,) = postscript_pages(colour, device="ppmraw")
    assert is_gray(mono_page)
    assert not is_gray(colour_page)  # the test page has colour bars: the check can fail


def test_postscript_monochrome_from_raster(run: OptionRun) -> None:
    _, mono = run.output("ps-mono-raster")
    _, colour = run.output("ps-color-raster")
    assert b"/DeviceGray setcolorspace" in mono and b"/DeviceRGB" not in mono
    assert b"/DeviceRGB setcolorspace" in colour
    assert is_gray(postscript_pages(mono, device="ppmraw")[0])


def test_postscript_media(run: OptionRun) -> None:
    _, data = run.output("ps-a5")
    assert b"%%BeginFeature: *PageSize iso_a5_148x210mm" in data
    (page,) = postscript_pages(data)
    assert abs(page.width_pt - 420) <= 2 and abs(page.height_pt - 595) <= 2


# -- what a printer cannot do ------------------------------------------------------------------


@pytest.mark.parametrize("key", UNSUPPORTED)
def test_unsupported_option_is_refused_with_fidelity(run: OptionRun, key: str) -> None:
    printer, name, attrs = UNSUPPORTED[key]
    client = IppPrinter(run.gateway.port, printer)
    sample = run.samples[name]
    (attribute,) = attrs
    for reply in (client.print_job(sample.read(), sample.fmt, attrs, fidelity=True),
                  client.validate_job(sample.fmt, attrs, fidelity=True)):
        assert reply.status == Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED, reply
        assert attribute in reply.unsupported and attribute in reply.status_message
        assert "job-id" not in reply.job


@pytest.mark.parametrize("key", UNSUPPORTED)
def test_unsupported_option_is_reported_without_fidelity(run: OptionRun, key: str) -> None:
    printer, _, attrs = UNSUPPORTED[key]
    (attribute,) = attrs
    reply = run.relaxed[key]
    assert reply.status == Status.OK_IGNORED_OR_SUBSTITUTED, reply
    assert list(reply.unsupported) == [attribute]
    job, data = run.output(key)
    assert attribute not in job  # not kept in the job's template either
    if printer == "pcl5":
        commands = decode_pcl(data).commands
        assert not any(c.endswith(b"S") and c.startswith(b"&l") for c in commands)
    elif printer == "ps":
        assert len(postscript_pages(data)) == 1


def test_pcl_monochrome_printer_output_has_no_colour(run: OptionRun) -> None:
    """What the colour-on-mono job printed instead: 1-bit PCL raster, as the printer takes."""
    _, data = run.output("colour-on-mono")
    job: PclJob = decode_pcl(data)
    assert len(job.pages) == 1 and job.pages[0].resolution == DPI
    assert not any(c.startswith(b"*r") and c.endswith(b"U") for c in job.commands)


@pytest.mark.parametrize("fidelity", [True, False])
def test_options_of_a_sniffed_document_are_not_silently_ignored(
    run: OptionRun, fidelity: bool
) -> None:
    client = IppPrinter(run.gateway.port, "ps")
    attrs: AttributeSpec = {"page-ranges": ranges((2, 2))}
    reply = client.print_job(run.samples["jpeg"].read(), "application/octet-stream", attrs,
                             fidelity=fidelity)
    if reply.status == Status.OK:  # let the job finish before the assertion says why
        client.wait_done(reply.job_id)
    assert list(reply.unsupported) == ["page-ranges"], reply
    if fidelity:
        assert reply.status == Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED
    else:
        assert reply.status == Status.OK_IGNORED_OR_SUBSTITUTED
        job = client.wait_done(reply.job_id)
        assert job["job-state"] == [JobState.COMPLETED] and "page-ranges" not in job


@pytest.mark.parametrize("fidelity", [True, False])
@pytest.mark.parametrize("fmt", ["image/jpeg", "application/octet-stream"])
def test_send_document_checks_the_job_options_against_its_format(
    run: OptionRun, fidelity: bool, fmt: str
) -> None:
    """Create-Job cannot know the format (clients such as CUPS send it with Send-Document):
    options accepted then are checked when the document comes, and never silently ignored."""
    client = IppPrinter(run.gateway.port, "ps")
    fidelity_attr: AttributeSpec = {"ipp-attribute-fidelity": (ValueTag.BOOLEAN, fidelity)}
    created = client.send(Operation.CREATE_JOB, fidelity_attr, {"page-ranges": ranges((2, 2))})
    assert created.status == Status.OK, created
    job_id = created.job_id
    reply = client.send(Operation.SEND_DOCUMENT, {
        "job-id": (ValueTag.INTEGER, job_id), "last-document": (ValueTag.BOOLEAN, True),
        "document-format": (ValueTag.MIME_MEDIA_TYPE, fmt)}, document=run.samples["jpeg"].read())
    assert list(reply.unsupported) == ["page-ranges"], reply
    job = client.wait_done(job_id)
    if fidelity:
        assert reply.status == Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED, reply
        assert job["job-state"] == [JobState.ABORTED], job
    else:
        assert reply.status == Status.OK_IGNORED_OR_SUBSTITUTED, reply
        assert job["job-state"] == [JobState.COMPLETED] and "page-ranges" not in job


# -- orientation-requested, printer-resolution / print-quality, media of a raster -------------


def ink_box(lines: list[bytes], white: int = 255) -> tuple[int, int]:
    """Width and height (in pixels) of what is drawn on an 8-bit gray page."""
    inked = [i for i, line in enumerate(lines) if line.count(white) != len(line)]
    columns = [j for i in inked for j in (
        next(k for k, v in enumerate(lines[i]) if v != white),
        len(lines[i]) - 1 - next(k for k, v in enumerate(reversed(lines[i])) if v != white))]
    return max(columns) - min(columns) + 1, inked[-1] - inked[0] + 1


@pytest.mark.parametrize("key, portrait", [("ps-landscape-pdf", "ps-color-pdf"),
                                           ("ps-landscape-ps", "ps-portrait-ps")])
def test_postscript_orientation_turns_the_pages(run: OptionRun, key: str, portrait: str) -> None:
    _, turned = run.output(key)
    _, upright = run.output(portrait)
    (page,) = postscript_pages(turned)
    (reference,) = postscript_pages(upright)
    assert abs(page.width_pt - 595) <= 2 and abs(page.height_pt - 842) <= 2  # still A4
    width, height = ink_box(page.lines)
    ref_width, ref_height = ink_box(reference.lines)
    # The page turned a quarter: across the sheet what ran along it (and shrunk to fit).
    assert (width > height) != (ref_width > ref_height)
    assert abs(width / height - ref_height / ref_width) < 0.15 * ref_height / ref_width


def pcl_ink_box(rows: list[bytes]) -> tuple[int, int]:
    inked = [i for i, row in enumerate(rows) if any(row)]
    columns = [i for i in inked for i in (
        next(k for k, v in enumerate(rows[i]) if v),
        len(rows[i]) - 1 - next(k for k, v in enumerate(reversed(rows[i])) if v))]
    return (max(columns) - min(columns) + 1) * 8, inked[-1] - inked[0] + 1


def test_pcl_orientation_turns_the_page(run: OptionRun) -> None:
    _, data = run.output("pcl-landscape-pdf")
    _, upright = run.output("pcl-150dpi")
    (page,) = decode_pcl(data).pages
    (reference,) = decode_pcl(upright).pages
    assert page.resolution == reference.resolution == DPI
    assert page.width == reference.width  # both on portrait A4 (ESC*r#S)
    assert b"&l26A" in decode_pcl(data).commands
    width, height = pcl_ink_box(page.rows)
    ref_width, ref_height = pcl_ink_box(reference.rows)
    assert (width > height) != (ref_width > ref_height)
    assert abs(width / height - ref_height / ref_width) < 0.15 * ref_height / ref_width


@pytest.mark.parametrize("key, dpi", [("pcl-300dpi", 300), ("pcl-150dpi", 150),
                                      ("pcl-draft", 150), ("pcl-high", 300)])
def test_pcl_resolution_changes_the_raster(run: OptionRun, key: str, dpi: int) -> None:
    _, data = run.output(key)
    (page,) = decode_pcl(data).pages
    assert page.resolution == dpi and b"*t%dR" % dpi in decode_pcl(data).commands
    # A4 at that resolution, less the unprintable 71/300 inch on the left (ESC*r#S)
    assert abs(page.width + round(71 * dpi / 300 / 8) * 8 - 595 * dpi / 72) <= 1


def test_postscript_resolution(run: OptionRun) -> None:
    _, data = run.output("ps-300dpi")
    assert b"<< /HWResolution [300 300] >> setpagedevice" in data
    _, default = run.output("ps-color-pdf")
    assert b"HWResolution" not in default


def test_postscript_raster_on_other_media_is_fitted(run: OptionRun) -> None:
    """A4 PWG pages with media=na_letter: printed on letter, shrunk to fit (print-scaling)."""
    _, data = run.output("ps-letter-pwg")
    assert b"%%BeginFeature: *PageSize na_letter_8.5x11in" in data
    (page,) = postscript_pages(data)
    assert abs(page.width_pt - 612) <= 2 and abs(page.height_pt - 792) <= 2
    assert b"/PageSize [595 842]" not in data


def test_pcl_raster_on_other_media_is_fitted(run: OptionRun) -> None:
    _, data = run.output("pcl-letter-urf")
    job = decode_pcl(data)
    (page,) = job.pages
    assert b"&l2A" in job.commands and b"&l26A" not in job.commands  # letter, not A4
    # letter's width (1275 pixels at 150 dpi) less the unprintable 75/300 inch, not A4's 1240
    assert page.width == round(612 * DPI / 72) - round(75 * DPI / 300 / 8) * 8
    assert any(any(row) for row in page.rows)


def test_jpeg_reaches_postscript_verbatim(run: OptionRun) -> None:
    _, data = run.output("ps-a5")
    jpeg = run.samples["jpeg"].read()
    start = data.index(b"/DCTDecode filter >> GwImage\n") + len(b"/DCTDecode filter >> GwImage\n")
    assert data[start : start + len(jpeg)] == jpeg
