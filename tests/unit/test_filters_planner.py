"""The conversion plan: what each driver accepts is exactly what it can print, and options a
printer cannot honour are named, not ignored."""

from __future__ import annotations

import pytest

from drivers.driver import accepted_formats, plan, unsupported_options
from drivers.filters.ghostscript import GhostscriptJob, rotate_pages
from drivers.filters.image import place
from drivers.filters.planner import Context
from drivers.filters.raster_convert import MediaFit, MediaFitter
from drivers.languages.raw import RAW_PASSTHROUGH_FORMATS, raw_capabilities
from drivers.model.capabilities import (
    LANDSCAPE,
    MEDIA_SIZES,
    PORTRAIT,
    REVERSE_PORTRAIT,
    Capabilities,
    PrintOptions,
)
from drivers.model.raster import (
    Band,
    PageEnd,
    PageStart,
    PixelFormat,
    RasterEvent,
    RasterPage,
    expand,
)
from drivers.registry import driver_names, get_driver

PAGE_FORMATS = ["application/pdf", "application/postscript", "image/pwg-raster", "image/urf",
                "image/jpeg", "image/png", "text/plain"]


@pytest.mark.parametrize("name", driver_names())
def test_every_accepted_format_has_a_plan(name: str) -> None:
    driver = get_driver(name)
    formats = accepted_formats(driver, driver.capabilities)
    assert formats == driver.capabilities.document_formats
    for fmt in formats:
        if fmt != "application/octet-stream" or name == "raw":
            assert plan(fmt, driver, driver.capabilities) is not None, fmt


@pytest.mark.parametrize("name, fmt, steps", [
    ("pcl5", "application/pdf", "application/pdf -> ghostscript(pbmraw) -> pcl5"),
    ("pcl5", "image/urf", "image/urf -> gateway -> pcl5"),
    ("postscript", "application/pdf", "application/pdf -> ghostscript(ps2write) -> postscript"),
    ("postscript", "application/postscript", "postscript -> setup -> postscript"),
    ("pclxl", "image/jpeg", "image/jpeg -> postscript -> ghostscript(pxl) -> pclxl"),
    ("text", "application/pdf", "application/pdf -> ghostscript(txtwrite) -> text"),
])
def test_plan_steps(name: str, fmt: str, steps: str) -> None:
    chosen = plan(fmt, get_driver(name), get_driver(name).capabilities)
    assert chosen is not None and chosen.steps == steps


@pytest.mark.parametrize("name, fmt", [
    ("text", "application/vnd.hp-PCL"), ("text", "image/gif"),
    ("postscript", "application/vnd.hp-PCL"),
    ("pcl5", "application/vnd.hp-PCLXL"), ("pcl5", "image/gif"),
])
def test_unsupported_formats_have_no_plan(name: str, fmt: str) -> None:
    driver = get_driver(name)
    assert plan(fmt, driver, driver.capabilities) is None
    assert fmt not in accepted_formats(driver, driver.capabilities)


def test_operator_can_restrict_the_formats() -> None:
    driver = get_driver("pcl5")
    caps = driver.capabilities.with_changes(
        document_formats=("application/octet-stream", "application/pdf", "image/urf"))
    assert accepted_formats(driver, caps) == caps.document_formats
    assert plan("image/jpeg", driver, caps) is None
    raw = get_driver("raw")
    pdf_only = raw.capabilities.with_changes(document_formats=("application/pdf",))
    assert accepted_formats(raw, pdf_only) == ("application/pdf",)
    assert plan("image/jpeg", raw, pdf_only) is None


def test_raw_queue_takes_only_the_formats_it_lists() -> None:
    raw = get_driver("raw")
    assert raw.capabilities.document_formats == ("application/octet-stream",)
    assert accepted_formats(raw, raw.capabilities) == ("application/octet-stream",)
    assert plan("application/pdf", raw, raw.capabilities) is None
    assert plan("application/octet-stream", raw, raw.capabilities) is not None
    assert raw.capabilities.command_set == ()  # nothing known about the printer's languages
    listed = raw_capabilities(("image/urf", "application/pdf", "application/octet-stream"))
    assert accepted_formats(raw, listed) == ("image/urf", "application/pdf",
                                             "application/octet-stream")
    assert listed.command_set == ("URF", "PDF")
    assert plan("image/jpeg", raw, listed) is None
    everything = raw_capabilities(RAW_PASSTHROUGH_FORMATS)
    assert everything.command_set == ("PDF", "PS", "JPEG", "PNG", "PWG", "URF", "TXT")
    for fmt in RAW_PASSTHROUGH_FORMATS:
        chosen = plan(fmt, raw, everything)
        assert chosen is not None and chosen.stages(Context(raw, everything, PrintOptions())) == []
    with pytest.raises(ValueError, match=r"application/vnd\.hp-PCL"):
        raw_capabilities(("application/vnd.hp-PCL",))


@pytest.mark.parametrize("name, fmt, options, expected", [
    ("raw", "application/pdf", PrintOptions(copies=2, print_scaling="fill"),
     ["print-scaling"]),
    ("pcl5", "application/pdf", PrintOptions(sides="two-sided-long-edge"), ["sides"]),
    ("pclxl", "application/pdf", PrintOptions(sides="two-sided-long-edge", copies=5), []),
    ("pcl5", "image/jpeg", PrintOptions(page_ranges=((1, 1),)), ["page-ranges"]),
    ("pcl5", "text/plain", PrintOptions(page_ranges=((2, 3),)), []),
    ("text", "text/plain", PrintOptions(page_ranges=((2, 3),)), ["page-ranges"]),
    ("pcl5", "application/pdf", PrintOptions(color_mode="color"), ["print-color-mode"]),
    ("postscript", "image/urf", PrintOptions(color_mode="color", copies=3), []),
    ("pcl5", "application/pdf", PrintOptions(media="iso_a3_297x420mm"), ["media"]),
    ("pcl5", "application/pdf", PrintOptions(media="a4"), []),
    # orientation-requested: Ghostscript turns PDF/PS pages, our writers place images and lay
    # text out across the sheet; PWG/URF pages come composed, a line printer cannot turn text.
    ("postscript", "application/pdf", PrintOptions(orientation=LANDSCAPE), []),
    ("pcl5", "application/postscript", PrintOptions(orientation=REVERSE_PORTRAIT), []),
    ("pclxl", "text/plain", PrintOptions(orientation=LANDSCAPE), []),
    ("pcl5", "image/jpeg", PrintOptions(orientation=LANDSCAPE), []),
    ("postscript", "image/pwg-raster", PrintOptions(orientation=LANDSCAPE),
     ["orientation-requested"]),
    ("pcl5", "image/urf", PrintOptions(orientation=REVERSE_PORTRAIT), ["orientation-requested"]),
    ("pcl5", "image/urf", PrintOptions(orientation=PORTRAIT), []),
    ("text", "application/pdf", PrintOptions(orientation=LANDSCAPE), ["orientation-requested"]),
    # print-scaling: Ghostscript fits or leaves PDF/PS pages, it cannot fill the sheet.
    ("postscript", "application/pdf", PrintOptions(print_scaling="fill"), ["print-scaling"]),
    ("pcl5", "application/postscript", PrintOptions(print_scaling="fill"), ["print-scaling"]),
    ("postscript", "application/pdf", PrintOptions(print_scaling="fit"), []),
    ("pcl5", "image/jpeg", PrintOptions(print_scaling="fill"), []),
    ("postscript", "image/urf", PrintOptions(print_scaling="fill", media="na_letter_8.5x11in"),
     []),
    ("text", "text/plain", PrintOptions(print_scaling="fit"), ["print-scaling"]),
    # Text is flowed onto the page (fit and none alike); filling would crop lines.
    ("postscript", "text/plain", PrintOptions(print_scaling="fill"), ["print-scaling"]),
    ("pcl5", "text/plain", PrintOptions(print_scaling="none"), []),
])
def test_unsupported_options(name: str, fmt: str, options: PrintOptions,
                             expected: list[str]) -> None:
    driver = get_driver(name)
    assert unsupported_options(fmt, driver, driver.capabilities, options) == expected


A4 = (595.28, 841.89)
NO_MARGINS = (0.0, 0.0, 0.0, 0.0)


def test_place_fits_and_centres() -> None:
    placement = place((1000, 500), 72, A4, NO_MARGINS, PrintOptions(orientation=3))
    assert placement.rotation == 0
    assert placement.w == pytest.approx(A4[0]) and placement.h == pytest.approx(A4[0] / 2)
    assert placement.y == pytest.approx((A4[1] - placement.h) / 2)


def test_place_auto_rotates_landscape_images() -> None:
    placement = place((2560, 1600), 72, A4, NO_MARGINS, PrintOptions())
    assert placement.rotation == 90
    assert placement.h == pytest.approx(A4[1]) and placement.w == pytest.approx(A4[1] / 1.6)


def test_place_orientation_and_scaling_modes() -> None:
    small = (100, 200)
    options = PrintOptions(orientation=REVERSE_PORTRAIT, print_scaling="none")
    none = place(small, 72, A4, NO_MARGINS, options)
    assert (none.rotation, none.w, none.h) == (180, 100, 200)
    fit = place(small, 72, A4, (36, 36, 36, 36), PrintOptions(print_scaling="auto-fit",
                                                                  orientation=LANDSCAPE))
    assert fit.rotation == 90 and (fit.w, fit.h) == (200, 100)
    fill = place((100, 100), 72, A4, (36, 36, 36, 36), PrintOptions(print_scaling="fill"))
    assert fill.w == pytest.approx(A4[1]) and fill.x < 0


def test_print_options_helpers() -> None:
    caps = Capabilities(resolutions=(300, 600), default_resolution=600)
    assert PrintOptions(print_quality=3).dpi(caps) == 300
    assert PrintOptions(resolution=300, print_quality=5).dpi(caps) == 300
    assert PrintOptions(media="a5").media_size(caps).name == "iso_a5_148x210mm"
    assert PrintOptions(media="iso_a3_297x420mm").media_size(caps).name == "iso_a4_210x297mm"
    ranges = PrintOptions(page_ranges=((2, 3), (7, 7)))
    assert [ranges.wants_page(n) for n in range(1, 9)] == [False, True, True] + [False] * 3 + [
        True, False]
    assert ranges.last_page_wanted() == 7


@pytest.mark.parametrize("orientation, rotation", [(None, 0), (PORTRAIT, 0), (LANDSCAPE, 90),
                                                   (REVERSE_PORTRAIT, 180)])
def test_orientation_turns_the_pages_in_ghostscript(orientation: int | None,
                                                    rotation: int) -> None:
    driver = get_driver("pcl5")
    found = plan("application/pdf", driver, driver.capabilities)
    assert found is not None
    options = PrintOptions(orientation=orientation)
    (stage, *_) = found.stages(Context(driver, driver.capabilities, options))
    job = getattr(stage, "job")  # noqa: B009 - the GhostscriptStage
    assert isinstance(job, GhostscriptJob) and job.rotation == rotation
    args = " ".join(job.arguments("in.pdf"))
    assert ("/BeginPage" in args) == bool(rotation)


def test_rotate_pages_fits_a_quarter_turn_on_the_sheet() -> None:
    a4 = MEDIA_SIZES["iso_a4_210x297mm"]
    scale = a4.width_points / a4.height_points
    assert f"90 rotate {scale:.5f} dup scale" in rotate_pages(90, a4)
    assert f"-90 rotate {scale:.5f} dup scale" in rotate_pages(270, a4)
    assert "595.28 841.89 translate 180 rotate" in rotate_pages(180, a4)


def _raster(width: int, height: int, pixels: PixelFormat, line: bytes) -> list[RasterEvent]:
    page = RasterPage(width, height, pixels, 72, 72)
    return [PageStart(page), Band([(line, height)]), PageEnd(page)]


@pytest.mark.parametrize("scaling, size", [
    ("fit", (200, 200)),  # a 100x100 black page, doubled, centred vertically
    ("none", (100, 100)),
    ("fill", (300, 300)),  # cropped at the sides
])
def test_media_fitter_puts_raster_pages_on_the_requested_media(
    scaling: str, size: tuple[int, int]
) -> None:
    media = MediaFit("test", 200, 300, scaling)  # points: 200x300 pixels at 72 dpi
    fitter = MediaFitter(media)
    events = list(fitter.events(_raster(100, 100, PixelFormat.SGRAY_8, bytes(100))))
    start, end = events[0], events[-1]
    assert isinstance(start, PageStart) and isinstance(end, PageEnd)
    assert (start.page.width, start.page.height) == (200, 300)
    assert start.page.media_name == "test" and start.page.size_points == (200, 300)
    lines = [line for e in events if isinstance(e, Band) for line in expand(e.rows)]
    assert len(lines) == 300 and all(len(line) == 200 for line in lines)
    black = [i for i, line in enumerate(lines) if 0 in line]
    top = (300 - min(size[1], 300)) // 2
    assert (black[0], black[-1] + 1) == (top, top + min(size[1], 300))
    widest = max(line.count(0) for line in lines)
    assert widest == min(size[0], 200)


def test_media_fitter_leaves_pages_of_the_requested_size() -> None:
    events = _raster(200, 300, PixelFormat.BLACK_1, bytes(25))
    assert list(MediaFitter(MediaFit("test", 200, 300)).events(events)) == events


def test_media_fitter_keeps_bilevel_lines_whole_bytes() -> None:
    media = MediaFit("test", 400, 300)
    events = list(MediaFitter(media).events(_raster(100, 150, PixelFormat.BLACK_1,
                                                    b"\xff" * 13)))
    lines = [line for e in events if isinstance(e, Band) for line in expand(e.rows)]
    assert len(lines) == 300 and {len(line) for line in lines} == {50}
    inked = [line for line in lines if any(line)]
    assert len(inked) == 300 and inked[0][:8] == bytes(8)  # 64 white pixels on the left
