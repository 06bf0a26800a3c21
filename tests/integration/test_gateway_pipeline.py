"""The format matrix over IPP: every corpus format x every driver, submitted with Print-Job to
one gateway process with a printer per driver (file:// devices), completes with its pages
counted, and arrives as valid output: PostScript renders in Ghostscript with the expected pages
on A4, PCL 5 decodes back (to the input's pixels for PWG raster), PCL XL parses token by token,
and the text printer's output has the expected pages; a colour PCL XL printer gets RGB, a
level 2 PostScript printer renders, a raw printer gets the bytes it was sent, and a PCL 5
printer with `pjl = true` gets the PJL ENTER LANGUAGE wrapper (inside the socket transport's
JOB/EOJ when its URI also says `pjl=on`). What each printer advertises is the planner's answer
and follows its configured capabilities, and a format it does not advertise is refused at
submit."""

from __future__ import annotations

import gzip
import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import pytest

from drivers import pjl
from drivers.driver import accepted_formats
from drivers.model.capabilities import MEDIA_SIZES
from drivers.registry import get_driver
from gateway.config import PrinterConfig
from gateway.core.printer import capabilities_for
from ippwire.enums import JobState, Status
from ippwire.model import Resolution
from tests.peers.gateway_proc import GatewayProcess, PrinterTable, start_configured_gateway
from tests.support.driver_printing import pwg_pages
from tests.support.gs_render import render
from tests.support.ipp_jobs import Attrs, IppPrinter
from tests.support.pcl_decoder import decode_pcl
from tests.support.pclxl_decoder import A4_PAPER, GRAY, RGB, decode_pclxl
from tests.support.pipeline_documents import Sample, make_samples

DPI = 150  # the lowest resolution a printer's config may name; the benchmark does 300/600
PRINTERS = (PrinterTable("ps", "postscript", pjl=False), PrinterTable("pcl5", "pcl5"),
            PrinterTable("pclxl", "pclxl"), PrinterTable("text", "text"),
            PrinterTable("pclxl-color", "pclxl", resolutions=(150, 300), color=True, duplex=False,
                         media=("iso_a4_210x297mm", "na_letter_8.5x11in")),
            PrinterTable("ps2", "postscript2", duplex=False,
                         media=("iso_a4_210x297mm", "iso_a5_148x210mm", "na_legal_8.5x14in")),
            PrinterTable("raw", "raw"))
# PCL 5 printers with `pjl = true` in their config: on a file device and on a 9100 socket
# whose URI also asks for the transport's PJL JOB/EOJ wrapper (the device is set at start).
PJL_PRINTERS = (PrinterTable("pcl5-pjl", "pcl5", duplex=True, color=False,
                             media=("iso_a4_210x297mm",), pjl=True),
                PrinterTable("pcl5-socket", "pcl5", pjl=True))
SAMPLES = ("pdf", "ps", "jpeg", "png", "text", "pwg", "pwg-rgb", "urf")
PJL_SAMPLES = ("pdf", "text")
COLOR_SAMPLES = ("pdf", "jpeg", "png", "pwg-rgb", "urf")
# document-format-supported that each driver must advertise (beside application/octet-stream).
PAGE_FORMATS = {"application/pdf", "application/postscript", "image/jpeg", "image/png",
                "image/pwg-raster", "image/urf", "text/plain"}
PCL5_FORMATS = PAGE_FORMATS | {"application/vnd.hp-PCL"}
PCLXL_FORMATS = PAGE_FORMATS | {"application/vnd.hp-PCLXL"}
EXPECTED_FORMATS = {"ps": PAGE_FORMATS, "pcl5": PCL5_FORMATS, "pclxl": PCLXL_FORMATS,
                    "text": PAGE_FORMATS,
                    "pclxl-color": PCLXL_FORMATS, "ps2": PAGE_FORMATS, "raw": PAGE_FORMATS,
                    "pcl5-pjl": PCL5_FORMATS, "pcl5-socket": PCL5_FORMATS}
A4_POINTS = (595, 842)
TITLES = {"pdf": "Printer test page", "ps": "Making Pictures With GNU PIC"}  # on page 1


class SocketSink:
    """A port-9100 printer on loopback that keeps the bytes of each connection (one job)."""

    def __init__(self) -> None:
        self.server = socket.create_server(("127.0.0.1", 0))
        self.jobs: list[bytes] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    @property
    def uri(self) -> str:
        return f"socket://127.0.0.1:{self.server.getsockname()[1]}"

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                data = bytearray()
                while chunk := conn.recv(1 << 16):
                    data += chunk
                self.jobs.append(bytes(data))

    def close(self) -> None:
        self.server.close()


@dataclass
class Matrix:
    gateway: GatewayProcess
    samples: dict[str, Sample]
    sink: SocketSink
    advertised: dict[str, list[str]] = field(default_factory=dict)
    submitted: dict[tuple[str, str], int] = field(default_factory=dict)  # -> job id
    variants: dict[tuple[str, str, str], int] = field(default_factory=dict)  # -> job id
    refused: dict[tuple[str, str], int] = field(default_factory=dict)  # -> IPP status

    def printer(self, name: str) -> IppPrinter:
        return IppPrinter(self.gateway.port, name)

    def finished_job(self, printer: str, sample: str) -> tuple[Attrs, bytes]:
        """The completed job's attributes and what its file device received."""
        job_id = self.submitted[(printer, sample)]
        attrs = self.printer(printer).wait_done(job_id)
        assert attrs["job-state"] == [JobState.COMPLETED], (attrs, self.log_tail())
        return attrs, self.gateway.output_file(printer, job_id).read_bytes()

    def log_tail(self) -> str:
        return "\n".join(self.gateway.log.read_text(errors="replace").splitlines()[-30:])


@pytest.fixture(scope="module")
def matrix(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Matrix]:
    """Every job submitted up front, so the printer workers convert side by side."""
    samples = make_samples(tmp_path_factory.mktemp("samples"), DPI)
    sink = SocketSink()
    socket_printer = replace(PJL_PRINTERS[1], device=f"{sink.uri}?pjl=on")
    specs = (*PRINTERS, PJL_PRINTERS[0], socket_printer)
    gateway = start_configured_gateway(tmp_path_factory.mktemp("gateway"), specs)
    try:
        run = Matrix(gateway, samples, sink)
        for spec in specs:
            printer = run.printer(spec.name)
            formats = printer.attributes("document-format-supported")
            run.advertised[spec.name] = [str(f) for f in formats["document-format-supported"]]
            for name in SAMPLES if spec in PRINTERS else PJL_SAMPLES:
                sample = samples[name]
                reply = printer.print_job(sample.read(), sample.fmt)
                if reply.status == Status.OK:
                    run.submitted[(spec.name, name)] = reply.job_id
                else:
                    run.refused[(spec.name, name)] = reply.status
        submit_variants(run)
        yield run
    finally:
        gateway.stop()
        sink.close()


# The same documents again, sent as application/octet-stream (the gateway sniffs them) or
# gzip-compressed: deterministic printers must write exactly the same bytes.
VARIANTS = [(printer, sample, "octet-stream") for printer, samples in (
    ("pcl5", ("pdf", "ps", "jpeg", "text", "pwg", "urf")), ("text", ("pdf", "text")))
    for sample in samples] + [("pcl5", "pwg", "gzip"), ("pcl5", "text", "gzip")]


def submit_variants(run: Matrix) -> None:
    for printer, name, variant in VARIANTS:
        sample = run.samples[name]
        client = run.printer(printer)
        if variant == "gzip":
            reply = client.print_job(gzip.compress(sample.read()), sample.fmt, compression="gzip")
        else:
            reply = client.print_job(sample.read(), "application/octet-stream")
        assert reply.status == Status.OK, reply
        run.variants[(printer, name, variant)] = reply.job_id


@pytest.mark.parametrize("printer, sample, variant", VARIANTS)
def test_sniffed_and_compressed_documents_print_the_same(
    matrix: Matrix, printer: str, sample: str, variant: str
) -> None:
    job_id = matrix.variants[(printer, sample, variant)]
    attrs = matrix.printer(printer).wait_done(job_id)
    assert attrs["job-state"] == [JobState.COMPLETED], (attrs, matrix.log_tail())
    fmt = matrix.samples[sample].fmt
    if variant == "octet-stream":
        assert attrs["document-format-detected"] == [fmt]
    else:
        assert attrs["compression-supplied"] == ["gzip"]
    _, typed = matrix.finished_job(printer, sample)
    assert matrix.gateway.output_file(printer, job_id).read_bytes() == typed


ALL_SPECS = (*PRINTERS, *PJL_PRINTERS)


def printer_config(spec: PrinterTable) -> PrinterConfig:
    table = spec.table(Path("/unused"))
    formats = tuple(table.get("formats", ()))  # type: ignore[arg-type]
    return PrinterConfig(spec.name, "file:///unused/", spec.driver, media=spec.media,
                         resolutions=spec.resolutions, color=spec.color, duplex=spec.duplex,
                         pjl=spec.pjl, formats=formats)


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda spec: spec.name)
def test_advertised_formats_are_the_planners(matrix: Matrix, spec: PrinterTable) -> None:
    driver = get_driver(spec.driver)
    planned = accepted_formats(driver, capabilities_for(driver, printer_config(spec)))
    advertised = matrix.advertised[spec.name]
    assert advertised == list(planned)
    assert set(advertised) == EXPECTED_FORMATS[spec.name] | {"application/octet-stream"}


CAPABILITY_ATTRIBUTES = (
    "document-format-supported", "urf-supported", "pwg-raster-document-type-supported",
    "pwg-raster-document-resolution-supported", "media-supported", "media-default",
    "printer-resolution-supported", "sides-supported", "color-supported",
    "print-color-mode-supported", "printer-device-id")


@pytest.mark.parametrize("spec", ALL_SPECS, ids=lambda spec: spec.name)
def test_capability_attributes_follow_the_config(matrix: Matrix, spec: PrinterTable) -> None:
    """Each *-supported over IPP against the printer's config (or the driver's defaults
    where the config says nothing), not against the code that derives them."""
    attrs = matrix.printer(spec.name).attributes(*CAPABILITY_ATTRIBUTES)
    defaults = get_driver(spec.driver).capabilities
    color = defaults.color if spec.color is None else spec.color
    duplex = defaults.duplex if spec.duplex is None else spec.duplex
    media = list(spec.media) or [m.name for m in defaults.media]
    assert all(name in MEDIA_SIZES for name in media)
    resolutions = [Resolution(r, r, 3) for r in spec.resolutions]
    formats = attrs["document-format-supported"]
    assert formats == matrix.advertised[spec.name]
    assert attrs["media-supported"] == media
    assert attrs["media-default"] == [spec.media[0] if spec.media else defaults.media_default]
    assert attrs["printer-resolution-supported"] == resolutions
    assert attrs["color-supported"] == [color]
    modes = set(attrs["print-color-mode-supported"])
    if get_driver(spec.driver).passes_through:
        assert modes == {"auto"}  # a raw queue cannot change a document's colours
    else:
        assert "monochrome" in modes and ("color" in modes) == color
    one_sided = ["one-sided"]
    assert attrs["sides-supported"] == (
        [*one_sided, "two-sided-long-edge", "two-sided-short-edge"] if duplex else one_sided)
    if "image/pwg-raster" in formats:
        types = set(attrs["pwg-raster-document-type-supported"])
        assert {"black_1", "sgray_8"} <= types and ("srgb_8" in types) == color
        assert attrs["pwg-raster-document-resolution-supported"] == resolutions
    else:
        assert "pwg-raster-document-type-supported" not in attrs
        assert "pwg-raster-document-resolution-supported" not in attrs
    if "image/urf" in formats:
        urf = attrs["urf-supported"]
        assert "RS" + "-".join(str(r) for r in spec.resolutions) in urf
        assert ("SRGB24" in urf) == color and "W8" in urf
        assert ("DM1" in urf) == duplex
    else:
        assert "urf-supported" not in attrs
    command_set = str(attrs["printer-device-id"][0]).split("CMD:")[1].split(";")[0].split(",")
    assert ("PJL" in command_set) == (bool(spec.pjl) or spec.driver == "pclxl")


PRINTER_NAMES = [spec.name for spec in PRINTERS]


@pytest.mark.parametrize("sample", SAMPLES)
@pytest.mark.parametrize("printer", PRINTER_NAMES)
def test_submit_follows_what_is_advertised(matrix: Matrix, printer: str, sample: str) -> None:
    advertised = matrix.samples[sample].fmt in matrix.advertised[printer]
    assert ((printer, sample) in matrix.submitted) == advertised
    if not advertised:
        refusal = matrix.refused[(printer, sample)]
        assert refusal == Status.CLIENT_ERROR_DOCUMENT_FORMAT_NOT_SUPPORTED


def expected_pages(printer: str, sample: Sample) -> int:
    """A text printer passes text through as one stream: one form feed at its end."""
    return 1 if printer == "text" and sample.name == "text" else sample.pages


def combinations(*printers: str) -> list[tuple[str, str]]:
    text_formats = ("pdf", "ps", "text")
    return [(p, s) for p in printers for s in SAMPLES if p != "text" or s in text_formats]


@pytest.mark.parametrize("printer, sample", combinations("ps", "ps2"))
def test_postscript_renders_on_a4(matrix: Matrix, printer: str, sample: str) -> None:
    _, data = matrix.finished_job(printer, sample)
    assert data.startswith(b"%!PS")
    pages = render(data, dpi=18)
    assert len(pages) == matrix.samples[sample].pages
    assert all(abs(p.width_pt - A4_POINTS[0]) <= 4 and abs(p.height_pt - A4_POINTS[1]) <= 4
               for p in pages), [(p.width_pt, p.height_pt) for p in pages]
    if printer == "ps2" and sample != "ps":  # what we write (not what we pass through)
        assert b"\n%%LanguageLevel: 2\n" in data[:2048] and b"/FlateDecode filter" not in data


@pytest.mark.parametrize("sample", [s for p, s in combinations("pcl5")])
def test_pcl5_decodes(matrix: Matrix, sample: str) -> None:
    _, data = matrix.finished_job("pcl5", sample)
    job = decode_pcl(data)
    assert data.startswith(b"\x1bE") and data.endswith(b"\x1bE")
    assert len(job.pages) == matrix.samples[sample].pages
    assert b"&l26A" in job.commands  # A4
    if sample == "text":
        assert b"GNU GENERAL PUBLIC LICENSE" in job.pages[0].text
    else:
        assert all(page.resolution == DPI and any(any(row) for row in page.rows)
                   for page in job.pages)


def test_pcl5_raster_is_the_input_pixels(matrix: Matrix) -> None:
    """1-bit PWG in, PCL out: each decoded row is the input row less the left margin of the
    PCL logical page (71/300 inch on A4 portrait, rounded to whole bytes)."""
    _, data = matrix.finished_job("pcl5", "pwg")
    crop = round(71 * DPI / 300 / 8)
    source_pages = pwg_pages(matrix.samples["pwg"].path)
    decoded_pages = decode_pcl(data).pages
    assert len(decoded_pages) == len(source_pages) == 2
    for decoded, source in zip(decoded_pages, source_pages, strict=True):
        wanted = [row[crop:] for row in source]
        assert decoded.rows == wanted[: len(decoded.rows)]
        assert not any(any(row) for row in wanted[len(decoded.rows) :])


@pytest.mark.parametrize("printer, sample", combinations("pclxl", "pclxl-color"))
def test_pclxl_parses(matrix: Matrix, printer: str, sample: str) -> None:
    """pxlmono pages are grey only; the colour printer's (pxlcolor) colour pages in RGB."""
    _, data = matrix.finished_job(printer, sample)
    job = decode_pclxl(data)
    assert b"@PJL ENTER LANGUAGE" in job.pjl and job.sessions == 1
    assert len(job.pages) == matrix.samples[sample].pages
    assert all(page.media_size in (A4_PAPER, b"A4") and page.copies == 1 for page in job.pages)
    if printer == "pclxl-color":
        assert b"RENDERMODE=COLOR" in job.pjl
        spaces = [page.color_spaces for page in job.pages]
        if sample in COLOR_SAMPLES:  # pxlcolor draws black-only pages in grey
            assert all(RGB in page for page in spaces), spaces
    else:
        assert all(page.color_spaces == {GRAY} for page in job.pages)


@pytest.mark.parametrize("sample", SAMPLES)
def test_raw_printer_gets_the_bytes_it_was_sent(matrix: Matrix, sample: str) -> None:
    _, data = matrix.finished_job("raw", sample)
    assert data == matrix.samples[sample].read()


def test_png_sample_is_a_png(matrix: Matrix) -> None:
    data = matrix.samples["png"].read()
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    assert all(("image/png" in formats) == ((name, "png") in matrix.submitted)
               for name, formats in matrix.advertised.items() if name in PRINTER_NAMES)


PJL_PCL = pjl.UEL + b"@PJL\r\n@PJL ENTER LANGUAGE=PCL\r\n"


@pytest.mark.parametrize("sample", PJL_SAMPLES)
def test_pjl_true_wraps_pcl_in_enter_language(matrix: Matrix, sample: str) -> None:
    """pjl = true: UEL, ENTER LANGUAGE=PCL, the same PCL as without it, the closing UEL."""
    _, wrapped = matrix.finished_job("pcl5-pjl", sample)
    _, plain_pcl = matrix.finished_job("pcl5", sample)
    assert wrapped.startswith(PJL_PCL) and wrapped.endswith(b"\x1bE" + pjl.UEL)
    assert wrapped.count(pjl.UEL) == 2
    assert len(decode_pcl(wrapped[len(PJL_PCL):-len(pjl.UEL)]).pages) == (
        matrix.samples[sample].pages)
    assert plain_pcl.startswith(b"\x1bE") and pjl.UEL not in plain_pcl
    assert b"@PJL" not in plain_pcl


def test_pjl_false_sends_no_pjl(matrix: Matrix) -> None:
    """A PostScript printer with pjl = false (its default) sends no PJL either."""
    for sample in ("pdf", "ps", "text"):
        _, data = matrix.finished_job("ps", sample)
        assert pjl.UEL not in data[:64] and not data.endswith(pjl.UEL)


def test_pjl_nests_inside_the_socket_transports_job(matrix: Matrix) -> None:
    """socket://...?pjl=on and pjl = true: JOB, then the language section, then EOJ."""
    for sample in PJL_SAMPLES:
        matrix.printer("pcl5-socket").wait_done(matrix.submitted[("pcl5-socket", sample)])
    _, text_pcl = matrix.finished_job("pcl5", "text")  # the same config less pjl
    jobs = [job for job in matrix.sink.jobs if b"GNU GENERAL PUBLIC LICENSE" in job]
    assert len(matrix.sink.jobs) == len(PJL_SAMPLES) and len(jobs) == 1, matrix.sink.jobs
    (job,) = jobs
    assert job.startswith(pjl.UEL + b'@PJL\r\n@PJL JOB NAME="gateway-pipeline"\r\n'), job[:120]
    body = job[job.index(PJL_PCL):]
    footer = pjl.job_footer("gateway-pipeline")
    assert body == PJL_PCL + text_pcl + pjl.UEL + footer
    assert job.index(b"@PJL JOB NAME") < job.index(b"ENTER LANGUAGE=PCL") < job.index(b"@PJL EOJ")


@pytest.mark.parametrize("sample", ["pdf", "ps", "text"])
def test_text_printer_pages(matrix: Matrix, sample: str) -> None:
    _, data = matrix.finished_job("text", sample)
    text = data.decode("ascii")
    assert text.count("\f") == expected_pages("text", matrix.samples[sample])
    assert "\n" not in text.replace("\r\n", "")  # CR LF line ends for the printer
    if sample == "text":
        assert data.replace(b"\r\n", b"\n").rstrip(b"\f") == matrix.samples["text"].read()
    else:
        assert TITLES[sample] in text.split("\f")[0]


@pytest.mark.parametrize("printer, sample",
                         combinations("ps", "pcl5", "pclxl", "text", "pclxl-color", "ps2"))
def test_job_impressions_completed(matrix: Matrix, printer: str, sample: str) -> None:
    attrs, _ = matrix.finished_job(printer, sample)
    pages = expected_pages(printer, matrix.samples[sample])
    assert attrs["job-impressions-completed"] == [pages]
    assert attrs["job-media-sheets-completed"] == [pages]
    assert attrs["job-state-reasons"] == ["job-completed-successfully"]


def test_gateway_outputs_only_what_was_submitted(matrix: Matrix) -> None:
    for (printer, _), job_id in matrix.submitted.items():
        matrix.printer(printer).wait_done(job_id)
    for (printer, _, _), job_id in matrix.variants.items():
        matrix.printer(printer).wait_done(job_id)
    written = sorted(path.relative_to(matrix.gateway.output_dir)
                     for path in matrix.gateway.output_dir.rglob("*") if path.is_file())
    jobs = [*matrix.submitted.items(), *(((p, s), j) for (p, s, _), j in matrix.variants.items())]
    expected = sorted(Path(printer) / f"job-{job_id:05d}.prn" for (printer, _), job_id in jobs
                      if printer != "pcl5-socket")
    assert written == expected
    assert matrix.gateway.alive()
