"""The format matrix over IPP: every corpus format x every driver, submitted with Print-Job to
one gateway process with a printer per driver (file:// devices), completes with its pages
counted, and arrives as valid output: PostScript renders in Ghostscript with the expected pages
on A4, PCL 5 decodes back (to the input's pixels for PWG raster), PCL XL parses token by token,
and the text printer's output has the expected pages. What each printer advertises is the
planner's answer, and a format it does not advertise is refused at submit."""

from __future__ import annotations

import gzip
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from drivers.driver import get_driver
from drivers.filters.planner import accepted_formats
from gateway.config import PrinterConfig
from gateway.core.printer import capabilities_for
from gateway.ipp.enums import JobState, Status
from tests.integration.test_pipeline_matrix import pwg_pages
from tests.support.configured_gateway import (
    ConfiguredGateway,
    PrinterSpec,
    start_configured_gateway,
)
from tests.support.ipp_jobs import Attrs, IppPrinter
from tests.support.pclxl_decoder import A4_PAPER, decode_pclxl
from tests.support.pipeline_documents import Sample, make_samples
from tests.unit.test_languages_pcl import decode_pcl
from tests.unit.test_languages_postscript import render

DPI = 150  # the lowest resolution a printer's config may name; the benchmark does 300/600
PRINTERS = (PrinterSpec("ps", "postscript"), PrinterSpec("pcl5", "pcl5"),
            PrinterSpec("pclxl", "pclxl"), PrinterSpec("text", "text"))
SAMPLES = ("pdf", "ps", "jpeg", "text", "pwg", "pwg-rgb", "urf")
# document-format-supported that each driver must advertise (beside application/octet-stream).
PAGE_FORMATS = {"application/pdf", "application/postscript", "image/jpeg", "image/png",
                "image/pwg-raster", "image/urf", "text/plain"}
EXPECTED_FORMATS = {"ps": PAGE_FORMATS, "pcl5": PAGE_FORMATS | {"application/vnd.hp-PCL"},
                    "pclxl": PAGE_FORMATS | {"application/vnd.hp-PCLXL"},
                    "text": {"text/plain", "application/pdf", "application/postscript"}}
A4_POINTS = (595, 842)
TITLES = {"pdf": "Printer test page", "ps": "Making Pictures With GNU PIC"}  # on page 1


@dataclass
class Matrix:
    gateway: ConfiguredGateway
    samples: dict[str, Sample]
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
    """Every job submitted up front, so the four printer workers convert side by side."""
    samples = make_samples(tmp_path_factory.mktemp("samples"), DPI)
    gateway = start_configured_gateway(tmp_path_factory.mktemp("gateway"), PRINTERS)
    try:
        run = Matrix(gateway, samples)
        for spec in PRINTERS:
            printer = run.printer(spec.name)
            formats = printer.attributes("document-format-supported")
            run.advertised[spec.name] = [str(f) for f in formats["document-format-supported"]]
            for name in SAMPLES:
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


@pytest.mark.parametrize("spec", PRINTERS, ids=lambda spec: spec.name)
def test_advertised_formats_are_the_planners(matrix: Matrix, spec: PrinterSpec) -> None:
    driver = get_driver(spec.driver)
    config = PrinterConfig(spec.name, "file:///unused/", spec.driver, resolutions=spec.resolutions)
    planned = accepted_formats(driver, capabilities_for(driver, config))
    advertised = matrix.advertised[spec.name]
    assert advertised == list(planned)
    assert set(advertised) == EXPECTED_FORMATS[spec.name] | {"application/octet-stream"}


@pytest.mark.parametrize("sample", SAMPLES)
@pytest.mark.parametrize("printer", [spec.name for spec in PRINTERS])
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


@pytest.mark.parametrize("sample", [s for p, s in combinations("ps")])
def test_postscript_renders_on_a4(matrix: Matrix, sample: str) -> None:
    _, data = matrix.finished_job("ps", sample)
    assert data.startswith(b"%!PS")
    pages = render(data, dpi=18)
    assert len(pages) == matrix.samples[sample].pages
    assert all(abs(p.width_pt - A4_POINTS[0]) <= 4 and abs(p.height_pt - A4_POINTS[1]) <= 4
               for p in pages), [(p.width_pt, p.height_pt) for p in pages]


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


@pytest.mark.parametrize("sample", [s for p, s in combinations("pclxl")])
def test_pclxl_parses(matrix: Matrix, sample: str) -> None:
    _, data = matrix.finished_job("pclxl", sample)
    job = decode_pclxl(data)
    assert b"@PJL ENTER LANGUAGE" in job.pjl and job.sessions == 1
    assert len(job.pages) == matrix.samples[sample].pages
    assert all(page.media_size in (A4_PAPER, b"A4") and page.copies == 1 for page in job.pages)


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


@pytest.mark.parametrize("printer, sample", combinations("ps", "pcl5", "pclxl", "text"))
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
    written = sorted(path.relative_to(matrix.gateway.output)
                     for path in matrix.gateway.output.rglob("*") if path.is_file())
    jobs = [*matrix.submitted.items(), *(((p, s), j) for (p, s, _), j in matrix.variants.items())]
    expected = sorted(Path(printer) / f"job-{job_id:05d}.prn" for (printer, _), job_id in jobs)
    assert written == expected
    assert matrix.gateway.alive()
