"""The job's options arrive on paper: page ranges, copies, duplex, colour mode, orientation,
and progress is published as pages complete."""

from __future__ import annotations

from pathlib import Path

import pytest

from drivers.filters.stage import Progress
from drivers.model.capabilities import PORTRAIT, PrintOptions
from drivers.pipeline import print_document
from drivers.registry import get_driver
from drivers.transport import JobInfo, open_transport
from tests.peers import CORPUS_DIR as CORPUS
from tests.support.driver_printing import Document, low_resolution, print_to_file
from tests.support.gs_render import render
from tests.support.pcl_decoder import PclPage, decode_pcl

BASH = Document(CORPUS / "bash-87p-text.pdf", "application/pdf", 87)


async def test_page_ranges_through_ghostscript(tmp_path: Path) -> None:
    driver = get_driver("postscript")
    options = PrintOptions(page_ranges=((2, 3), (86, 86)))
    data, progress = await print_to_file(BASH, driver, low_resolution(driver), tmp_path / "o",
                                         options)
    assert len(render(data, 9)) == 3 == progress.pages


async def test_page_ranges_on_raster_and_text(
    documents: dict[str, Document], tmp_path: Path
) -> None:
    driver = get_driver("pcl5")
    options = PrintOptions(page_ranges=((2, 2),))
    data, progress = await print_to_file(documents["pwg"], driver, low_resolution(driver),
                                         tmp_path / "pwg", options)
    assert len(decode_pcl(data).pages) == 1 == progress.pages
    data, _ = await print_to_file(documents["text"], driver, driver.capabilities,
                                  tmp_path / "text", PrintOptions(page_ranges=((3, 4),)))
    assert len(decode_pcl(data).pages) == 2


async def test_pcl_copies_and_duplex(documents: dict[str, Document], tmp_path: Path) -> None:
    driver = get_driver("pcl5")
    caps = low_resolution(driver).with_changes(duplex=True)
    options = PrintOptions(copies=3, sides="two-sided-long-edge", collate=False)
    data, _ = await print_to_file(documents["pdf"], driver, caps, tmp_path / "o", options)
    commands = decode_pcl(data).commands
    assert commands[:3] == [b"E", b"&l3X", b"&l1S"]


async def test_pjl_language_switch_when_the_printer_speaks_pjl(
    documents: dict[str, Document], tmp_path: Path
) -> None:
    driver = get_driver("pcl5")
    caps = low_resolution(driver).with_changes(command_set=("PJL", "PCL"))
    data, _ = await print_to_file(documents["text"], driver, caps, tmp_path / "o")
    assert data.startswith(b"\x1b%-12345X@PJL\r\n@PJL ENTER LANGUAGE=PCL\r\n\x1bE")
    assert data.endswith(b"\x1bE\x1b%-12345X")
    plain, _ = await print_to_file(documents["text"], driver, driver.capabilities,
                                   tmp_path / "p")
    assert plain.startswith(b"\x1bE")


async def test_postscript_copies_duplex_and_monochrome(
    documents: dict[str, Document], tmp_path: Path
) -> None:
    driver = get_driver("postscript")
    options = PrintOptions(copies=2, sides="two-sided-short-edge", color_mode="monochrome")
    data, progress = await print_to_file(documents["pdf"], driver, low_resolution(driver),
                                         tmp_path / "o", options)
    assert b"<< /Duplex true /Tumble true >> setpagedevice" in data
    pages = render(data, 18, device="ppmraw")
    assert len(pages) == 2  # NumCopies
    assert all(line[i] == line[i + 1] == line[i + 2]
               for line in pages[0].lines for i in range(0, len(line), 3))
    assert progress.pages == 1


async def test_colour_raster_to_monochrome_postscript(
    documents: dict[str, Document], tmp_path: Path
) -> None:
    driver = get_driver("postscript")
    data, _ = await print_to_file(documents["pwg-rgb"], driver, low_resolution(driver),
                                  tmp_path / "o", PrintOptions(color_mode="monochrome"))
    assert b"/DeviceGray setcolorspace" in data and b"/DeviceRGB" not in data
    colour, _ = await print_to_file(documents["pwg-rgb"], driver, low_resolution(driver),
                                    tmp_path / "c")
    assert b"/DeviceRGB setcolorspace" in colour


def ink_box(page: PclPage) -> tuple[int, int]:
    """Width and height (in bytes and rows) of the inked part of a PCL raster page."""
    inked = [i for i, row in enumerate(page.rows) if any(row)]
    columns = [i for row in page.rows for i, byte in enumerate(row) if byte]
    return max(columns) - min(columns) + 1, inked[-1] - inked[0] + 1


@pytest.mark.parametrize("orientation, tall", [(None, True), (PORTRAIT, False)])
async def test_photo_orientation(
    orientation: int | None, tall: bool, documents: dict[str, Document], tmp_path: Path
) -> None:
    driver = get_driver("pcl5")
    options = PrintOptions(orientation=orientation)
    data, _ = await print_to_file(documents["jpeg"], driver, low_resolution(driver),
                                  tmp_path / "o", options)
    (page,) = decode_pcl(data).pages
    width_bytes, height_rows = ink_box(page)
    assert (height_rows > width_bytes * 8) == tall


async def test_progress_reports_pages_and_bytes(
    documents: dict[str, Document], tmp_path: Path
) -> None:
    seen: list[tuple[int, int]] = []

    def record(progress: Progress) -> None:
        seen.append((progress.pages, progress.bytes_sent))

    driver = get_driver("pcl5")
    transport = open_transport(f"file://{tmp_path}/out")
    await transport.start_job(JobInfo(job_id=1))
    final = await print_document(documents["pwg"].path, "image/pwg-raster", driver,
                                 low_resolution(driver), PrintOptions(), transport, record)
    await transport.end_job()
    assert [pages for pages, _ in seen if pages] == sorted(p for p, _ in seen if p)
    assert final.pages == 3 and seen[-1] == (3, final.bytes_sent)
    assert final.bytes_sent == (tmp_path / "out").stat().st_size
