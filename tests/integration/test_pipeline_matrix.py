"""Every corpus format x every driver through `print_document` into a file transport, checked
by format: PostScript renders in Ghostscript with the expected pages and media size, PCL 5
decodes (with the test decoder) back to the input raster's pixels, text has its pages."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.driver import accepted_formats
from drivers.errors import ConversionError
from drivers.languages.raw import RAW_PASSTHROUGH_FORMATS, raw_capabilities
from drivers.model.capabilities import PrintOptions
from drivers.registry import get_driver
from tests.support.driver_printing import (
    DPI,
    Document,
    low_resolution,
    print_to_file,
    pwg_pages,
)
from tests.support.gs_render import render
from tests.support.pcl_decoder import decode_pcl


@pytest.mark.parametrize("driver_name", ["postscript", "postscript2"])
@pytest.mark.parametrize("name", ["pdf", "ps", "jpeg", "png", "text", "pwg", "urf"])
async def test_postscript_printers(
    name: str, driver_name: str, documents: dict[str, Document], tmp_path: Path
) -> None:
    document, driver = documents[name], get_driver(driver_name)
    data, progress = await print_to_file(document, driver, low_resolution(driver),
                                         tmp_path / "out.ps")
    assert data.startswith(b"%!PS")
    pages = render(data, dpi=18)
    assert len(pages) == document.pages == (progress.pages or document.pages)
    assert all(abs(p.width_pt - 595) <= 4 and abs(p.height_pt - 842) <= 4 for p in pages)
    assert progress.bytes_sent == len(data)


@pytest.mark.parametrize("name", ["pdf", "ps", "jpeg", "png", "text", "pwg", "pwg-rgb", "urf"])
async def test_pcl5_printer(name: str, documents: dict[str, Document], tmp_path: Path) -> None:
    document, driver = documents[name], get_driver("pcl5")
    data, progress = await print_to_file(document, driver, low_resolution(driver),
                                         tmp_path / "out.pcl")
    job = decode_pcl(data)
    assert data.startswith(b"\x1bE") and data.endswith(b"\x1bE")
    assert len(job.pages) == progress.pages == document.pages
    if name == "text":
        assert b"GNU GENERAL PUBLIC LICENSE" in job.pages[0].text
    else:
        assert all(page.resolution == DPI and any(any(r) for r in page.rows) for page in job.pages)


async def test_pcl5_raster_is_the_input_pixels(
    documents: dict[str, Document], tmp_path: Path
) -> None:
    """1-bit PWG in, PCL out: every decoded row is the input row less the unprintable
    quarter inch PCL's logical page starts at (rounded to whole bytes)."""
    document, driver = documents["pwg"], get_driver("pcl5")
    data, _ = await print_to_file(document, driver, low_resolution(driver), tmp_path / "o.pcl")
    crop = round(71 * DPI / 300 / 8)
    for decoded, source in zip(decode_pcl(data).pages, pwg_pages(document.path), strict=True):
        wanted = [row[crop:] for row in source]
        assert decoded.rows == wanted[: len(decoded.rows)]
        assert not any(any(row) for row in wanted[len(decoded.rows) :])


@pytest.mark.parametrize("name", ["pdf", "ps", "jpeg", "text", "pwg", "urf"])
async def test_pclxl_printer(name: str, documents: dict[str, Document], tmp_path: Path) -> None:
    document, driver = documents[name], get_driver("pclxl")
    # Uncollated: the printer's own PageCopies (collated copies: tests/integration/test_collation)
    options = PrintOptions(copies=2, sides="two-sided-long-edge", collate=False)
    data, progress = await print_to_file(document, driver, low_resolution(driver),
                                         tmp_path / "out.pxl", options)
    assert data.startswith(b"\x1b%-12345X@PJL") and data.endswith(b"\x1b%-12345X")
    assert b") HP-PCL XL" in data[:200]
    assert progress.pages == document.pages
    assert data.count(b"\xf8\x31") >= 1  # PageCopies
    assert data.count(b"\xf8\x35") >= 1  # DuplexPageMode


@pytest.mark.parametrize("name, pages", [("text", 1), ("pdf", 1), ("ps", 39)])
async def test_text_printer(
    name: str, pages: int, documents: dict[str, Document], tmp_path: Path
) -> None:
    document, driver = documents[name], get_driver("text")
    data, progress = await print_to_file(document, driver, driver.capabilities,
                                         tmp_path / "out.txt")
    assert data.count(b"\f") == pages == progress.pages
    assert b"\n" not in data.replace(b"\r\n", b"")
    data.decode("ascii")
    if name == "text":
        assert data.replace(b"\r\n", b"\n").rstrip(b"\f") == document.path.read_bytes()


async def test_text_printer_copies_repeat_the_document(
    documents: dict[str, Document], tmp_path: Path
) -> None:
    driver = get_driver("text")
    data, progress = await print_to_file(documents["text"], driver, driver.capabilities,
                                         tmp_path / "out.txt", PrintOptions(copies=3))
    assert data.count(b"\f") == 3 == progress.pages


@pytest.mark.parametrize("name", ["pdf", "jpeg", "pwg", "text"])
async def test_raw_printer_passes_through(
    name: str, documents: dict[str, Document], tmp_path: Path
) -> None:
    document, driver = documents[name], get_driver("raw")
    caps = raw_capabilities(RAW_PASSTHROUGH_FORMATS)  # what a `formats` setting may list
    data, _ = await print_to_file(document, driver, caps, tmp_path / "out.raw")
    assert data == document.path.read_bytes()


async def test_default_raw_queue_takes_only_octet_stream(
    documents: dict[str, Document], tmp_path: Path
) -> None:
    """A raw queue cannot know what its printer takes: unless told, it does not take a PDF
    as a PDF (a phone would send it, and a PCL printer print garbage)."""
    document, driver = documents["pdf"], get_driver("raw")
    with pytest.raises(ConversionError, match="raw printers cannot print application/pdf"):
        await print_to_file(document, driver, driver.capabilities, tmp_path / "pdf.raw")
    data, _ = await print_to_file(document, driver, driver.capabilities, tmp_path / "any.raw",
                                  fmt="application/octet-stream")
    assert data == document.path.read_bytes()


@pytest.mark.parametrize("driver_name", ["postscript", "pcl5", "pclxl", "text", "raw"])
async def test_octet_stream_is_sniffed(
    driver_name: str, documents: dict[str, Document], tmp_path: Path
) -> None:
    driver = get_driver(driver_name)
    _, progress = await print_to_file(documents["pdf"], driver, low_resolution(driver),
                                      tmp_path / "out", fmt="application/octet-stream")
    assert progress.bytes_sent > 0


@pytest.mark.parametrize("driver_name", ["postscript", "postscript2", "pcl5", "pclxl", "text"])
def test_advertised_formats_all_print(driver_name: str) -> None:
    """What document-format-supported lists is what this matrix prints, nothing else."""
    driver = get_driver(driver_name)
    formats = accepted_formats(driver, driver.capabilities)
    assert formats == driver.capabilities.document_formats
    assert "application/octet-stream" in formats
    assert {"image/urf", "image/pwg-raster", "image/jpeg", "application/pdf"} <= set(formats)
