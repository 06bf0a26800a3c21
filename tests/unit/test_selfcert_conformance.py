"""What the IPP Everywhere self-certification asks, and the RFC 8011 operation-attribute
MUSTs, driven through `dispatch` with real codec bytes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from drivers import get_driver
from drivers.filters.planner import ghostscript_available
from drivers.filters.pwg_raster import PwgRasterWriter
from drivers.model.capabilities import PrintOptions
from drivers.model.raster import PixelFormat, RasterPage
from gateway.config import Config, PrinterConfig
from gateway.core.system import System
from gateway.server.job_template import FIXED_DEFAULTS
from ippwire.enums import GroupTag, Operation, Status, ValueTag
from ippwire.model import Attribute, Collection, IntRange, Message, Resolution
from ippwire.writer import request
from tests.support.driver_printing import Document, print_to_file
from tests.support.ipp_dispatch import call, job_attr

T = ValueTag
URI = "ipp://localhost:8631/ipp/print"
EVERYWHERE_RAW = ("image/pwg-raster", "image/jpeg", "application/pdf",
                  "application/octet-stream")


@pytest.fixture
def system(tmp_path: Path) -> System:
    out = tmp_path / "out"
    return System(Config(spool=tmp_path / "spool", printers=(
        PrinterConfig("laser", f"file://{out}/laser/", driver="postscript"),
        PrinterConfig("plain", f"file://{out}/plain/"),
        PrinterConfig("rawpdf", f"file://{out}/rawpdf/", formats=EVERYWHERE_RAW),
        PrinterConfig("lines", f"file://{out}/lines/", driver="text"),
    ), max_job_bytes=1 << 20))


async def printer_attrs(system: System, name: str, *requested: str) -> dict[str, list[Any]]:
    attrs = {"requested-attributes": (T.KEYWORD, list(requested))} if requested else {}
    response = await call(system, request(Operation.GET_PRINTER_ATTRIBUTES,
                                          printer_uri=f"{URI}/{name}",
                                          attrs=attrs))  # type: ignore[arg-type]
    group = response.group(GroupTag.PRINTER)
    assert group is not None
    return {a.name: a.plain for a in group}


async def test_printer_attributes_the_suite_expects(system: System) -> None:
    laser = await printer_attrs(system, "laser")
    assert laser["document-password-supported"] == [0]  # no PDF is decrypted
    assert laser["ipp-features-supported"] == ["ipp-everywhere"]
    template = await printer_attrs(system, "laser", "job-template")
    assert template["overrides-supported"] == ["document-numbers", "pages"]
    assert "printer-name" not in template


async def test_ipp_everywhere_only_where_the_formats_meet_it(system: System) -> None:
    assert (await printer_attrs(system, "plain"))["ipp-features-supported"] == ["none"]
    raw = await printer_attrs(system, "rawpdf")
    expected = "ipp-everywhere" if ghostscript_available() else "none"
    assert raw["ipp-features-supported"] == [expected]
    # What a pass-through cannot honour is not advertised beyond its default.
    assert raw["print-color-mode-supported"] == ["auto"]
    assert raw["orientation-requested-supported"] == [3]
    assert raw["sides-supported"] == ["one-sided"]
    assert raw["copies-supported"] == [IntRange(1, 999)]
    assert (await printer_attrs(system, "plain"))["page-ranges-supported"] == [False]


async def test_a_line_printer_is_an_ipp_everywhere_printer(system: System) -> None:
    """It prints PWG raster, URF, JPEG and PNG as character art, in gray only."""
    lines = await printer_attrs(system, "lines")
    assert lines["ipp-features-supported"] == ["ipp-everywhere"]
    formats = lines["document-format-supported"]
    assert {"image/pwg-raster", "image/jpeg", "image/urf", "image/png", "text/plain"} <= set(
        formats)
    assert ("application/pdf" in formats) == ghostscript_available()
    assert lines["page-ranges-supported"] == [True]
    assert lines["print-color-mode-supported"] == ["auto", "monochrome"]
    assert lines["pwg-raster-document-type-supported"] == ["black_1", "sgray_8"]
    assert lines["pwg-raster-document-resolution-supported"] == [Resolution(72, 72)]
    assert "RS72" in lines["urf-supported"]


def art_pages(output: bytes) -> list[list[bytes]]:
    """The printed pages (form feed ended), each as its lines (CR LF ended)."""
    assert output.endswith(b"\f")
    pages = output[:-1].split(b"\f")
    assert all(page == b"" or page.endswith(b"\r\n") for page in pages)
    return [page.split(b"\r\n")[:-1] for page in pages]


async def test_a_jpeg_prints_as_character_art_of_the_page_grid(tmp_path: Path) -> None:
    """A black square fitted to US Letter: all 80 columns of the grid wide, and as many
    lines (12 points) tall as its 576 points make: 48, two of them half covered."""
    square = tmp_path / "square.jpg"
    Image.new("L", (240, 240), 0).save(square)
    driver = get_driver("text")
    output, progress = await print_to_file(
        Document(square, "image/jpeg", 1), driver, driver.capabilities, tmp_path / "out/",
        PrintOptions(copies=2, collate=False))
    pages = art_pages(output)
    assert progress.pages == 2 and len(pages) == 2 and pages[0] == pages[1]
    printed = [line for line in pages[0] if line]
    assert all(len(line) == 80 for line in printed)
    assert sum(line == b"@" * 80 for line in printed) == 47
    assert len(printed) == 49  # and a lighter line above and below
    assert pages[0][:7] == [b""] * 7  # centred: (756 - 576) / 2 points of margin above


async def test_pwg_raster_pages_print_as_character_art(tmp_path: Path) -> None:
    """Three gray A4 pages, each dark in a band of its own lines; page-ranges 2-3 and
    uncollated copies: 2, 2, 3, 3. A4's grid is 77 columns by 67 lines."""
    a4 = RasterPage(width=595, height=842, pixels=PixelFormat.SGRAY_8, dpi_x=72, dpi_y=72,
                    page_width_pt=595.28, page_height_pt=841.89)
    writer = PwgRasterWriter()
    data = writer.start()
    for number in (1, 2, 3):
        top = round(18 + 12 * 10 * number)  # line 10, 20 or 30 of the grid
        rows = [(a4.white_line, top), (bytes(a4.width), 24),
                (a4.white_line, a4.height - top - 24)]
        data += writer.page(a4.with_changes(number=number)) + writer.rows(rows)
    document = tmp_path / "pages.pwg"
    document.write_bytes(data)
    driver = get_driver("text")
    output, progress = await print_to_file(
        Document(document, "image/pwg-raster", 3), driver, driver.capabilities,
        tmp_path / "out/", PrintOptions(page_ranges=((2, 3),), copies=2, collate=False))
    pages = art_pages(output)
    assert progress.pages == 4 and len(pages) == 4
    for page, number in zip(pages, (2, 2, 3, 3), strict=True):
        dark = [i for i, line in enumerate(page) if line]
        assert dark == [10 * number, 10 * number + 1]
        assert all(page[i] == b"@" * 77 for i in dark)
    assert not driver.unsupported_options("image/pwg-raster", driver.capabilities,
                                          PrintOptions(page_ranges=((2, 3),), copies=2))


async def test_creation_response_has_job_state_message(system: System) -> None:
    response = await call(system, request(Operation.CREATE_JOB, printer_uri=f"{URI}/laser"))
    assert response.code == Status.OK
    assert job_attr(response, "job-state-message") == ""


def with_op_attr(message: Message, attr: Attribute) -> Message:
    message.groups[0].add(attr)
    return message


async def test_an_unsupported_operation_attribute_is_ignored_and_returned(
        system: System) -> None:
    """RFC 8011 4.1.7: ignored, listed in the unsupported group, ok-ignored status."""
    secret = Attribute.of("document-password", T.OCTET_STRING, b"pw")
    response = await call(system, with_op_attr(request(
        Operation.PRINT_JOB, printer_uri=f"{URI}/rawpdf",
        attrs={"document-format": (T.MIME_MEDIA_TYPE, "image/jpeg")},
        job_attrs={"copies": (T.INTEGER, 2)}), secret), b"\xff\xd8\xff\xe0 jpeg")
    assert response.code == Status.OK_IGNORED_OR_SUBSTITUTED
    unsupported = response.groups_of(GroupTag.UNSUPPORTED)
    assert len(unsupported) == 1 and unsupported[0].get("document-password") is not None
    assert unsupported[0].get("copies") is None  # a raw queue sends the document twice
    assert isinstance(job_attr(response, "job-id"), int)
    response = await call(system, with_op_attr(request(
        Operation.GET_PRINTER_ATTRIBUTES, printer_uri=f"{URI}/laser"),
        Attribute.of("x-vendor", T.KEYWORD, "y")))
    assert response.code == Status.OK_IGNORED_OR_SUBSTITUTED
    assert response.group(GroupTag.PRINTER) is not None


async def test_job_k_octets_over_the_limit_is_too_large(system: System) -> None:
    """RFC 8011 4.2.1.1: beyond job-k-octets-supported: client-error-request-entity-too-large."""
    for op in (Operation.VALIDATE_JOB, Operation.CREATE_JOB):
        response = await call(system, request(op, printer_uri=f"{URI}/laser",
                                              attrs={"job-k-octets": (T.INTEGER, 4096)}))
        assert response.code == Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE
    response = await call(system, request(Operation.VALIDATE_JOB, printer_uri=f"{URI}/laser",
                                          attrs={"job-k-octets": (T.INTEGER, 10)}))
    assert response.code == Status.OK
    assert not system.jobs


async def test_bad_which_jobs_is_refused_with_the_value(system: System) -> None:
    """RFC 8011 4.2.6.1: another which-jobs value is returned unsupported and refused."""
    response = await call(system, request(Operation.GET_JOBS, printer_uri=f"{URI}/laser",
                                          attrs={"which-jobs": (T.KEYWORD, "someday")}))
    assert response.code == Status.CLIENT_ERROR_ATTRIBUTES_OR_VALUES_NOT_SUPPORTED
    unsupported = response.group(GroupTag.UNSUPPORTED)
    assert unsupported is not None and unsupported.get("which-jobs") is not None


async def test_overrides_may_select_pages_but_change_nothing(system: System) -> None:
    pages = Attribute.of("pages", T.RANGE_OF_INTEGER, IntRange(1, 2))
    changing = Collection([pages, Attribute.of("media", T.KEYWORD, "iso_a5_148x210mm")])
    for override, status in ((Collection([pages]), Status.OK),
                             (changing, Status.OK_IGNORED_OR_SUBSTITUTED)):
        response = await call(system, request(
            Operation.VALIDATE_JOB, printer_uri=f"{URI}/laser",
            job_attrs={"overrides": (T.BEGIN_COLLECTION, override)}))
        assert response.code == status


def test_raw_copies_are_the_document_sent_again() -> None:
    raw = get_driver("raw")
    caps = raw.capabilities
    chosen = raw.plan("application/octet-stream", caps)
    assert chosen is not None
    made = raw.copy_plan(chosen, "application/octet-stream", caps, PrintOptions(copies=3))
    assert (made.passes, made.options.copies, made.copies_each) == (3, 1, 1)
    assert raw.unsupported_options("application/octet-stream", caps,
                                   PrintOptions(copies=3)) == []


@pytest.mark.parametrize("name", ["raw", "postscript", "pcl5", "pclxl", "text", "escp2"])
def test_every_fixed_option_has_a_default(name: str) -> None:
    driver = get_driver(name)
    assert set(driver.fixed(driver.capabilities)) <= set(FIXED_DEFAULTS)
