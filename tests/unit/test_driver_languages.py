"""Printer languages as objects: the explicit registry, and a language written the way
drivers/registry.py says (writers, routes from the shared toolkit, its own option rules)
printing through the real pipeline."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import pytest
from PIL import Image

from drivers.driver import Driver, family
from drivers.filters.ghostscript import GhostscriptJob
from drivers.filters.planner import Context, Plan, passthrough_plan, raster_plan, text_plan
from drivers.filters.text import TextLayout
from drivers.model.capabilities import Capabilities, PrintOptions
from drivers.model.formats import DOCUMENT_FORMATS, PDF, PNG, TEXT
from drivers.model.raster import PixelFormat, RasterPage, Row
from drivers.pipeline import print_document
from drivers.registry import DRIVERS, driver_names, get_driver, pjl_drivers
from drivers.transport import JobInfo, open_transport

DOTS = "application/x-dots"  # the toy language's own format


class DotWriter:
    """Raster pages as a line per page: its size and resolution, then the inked rows."""

    accepts: tuple[PixelFormat, ...] = (PixelFormat.BLACK_1,)

    def __init__(self, options: PrintOptions, caps: Capabilities) -> None:
        self.inked = 0

    def start_job(self) -> bytes:
        return b"DOTS\n"

    def start_page(self, page: RasterPage) -> bytes:
        self.inked = 0
        return b"page %dx%d %dx%d" % (page.width, page.height, page.dpi_x, page.dpi_y)

    def write_rows(self, rows: list[Row]) -> Iterable[bytes]:
        self.inked += sum(count for line, count in rows if any(line))
        return []

    def end_page(self) -> bytes:
        return b" inked %d\n" % self.inked

    def end_job(self) -> bytes:
        return b"END\n"


class DotText:
    def __init__(self, options: PrintOptions, caps: Capabilities, layout: TextLayout) -> None:
        self.columns = layout.columns

    def start_job(self) -> bytes:
        return b"TEXT %d\n" % self.columns

    def page(self, lines: list[str]) -> bytes:
        return "|".join(lines).encode() + b"\f"

    def end_job(self) -> bytes:
        return b"END\n"


class Dots(Driver):
    family = "dots"
    native_formats = (DOTS,)
    convertible = (*DOCUMENT_FORMATS, DOTS)
    pjl_language = "DOTS"

    def route(self, fmt: str) -> Plan:
        if fmt == DOTS:
            return passthrough_plan(fmt, self.name)
        if fmt == TEXT:
            return text_plan(DOTS, self.name, DotText)
        return raster_plan(fmt, DOTS, self.name, DotWriter, resolution=lambda o, c: (120, 72))

    def honours(self, attribute: str, fmt: str, caps: Capabilities,
                options: PrintOptions) -> bool:
        if attribute == "print-scaling":
            return False
        return super().honours(attribute, fmt, caps, options)


DOTS_DRIVER = Dots("dots", Capabilities(document_formats=Dots.default_formats(),
                                        resolutions=(72,), default_resolution=72))


def test_registry_lists_each_driver_once_by_its_name() -> None:
    names = driver_names()
    assert {"pcl5", "pclxl", "postscript", "postscript2", "raw", "text"} <= set(names)
    assert names == sorted(set(names))
    assert all(get_driver(name).name == name for name in names)
    assert get_driver("pcl5") is get_driver("pcl5")  # the language object, not a copy
    wrapped = set(pjl_drivers())
    assert {"pcl5", "postscript", "postscript2"} <= wrapped
    assert not wrapped & {"raw", "pclxl", "text"}  # untouched, or Ghostscript's own PJL
    with pytest.raises(KeyError, match="known: " + ", ".join(names)):
        get_driver("no-such-printer")


@pytest.mark.parametrize("name", sorted(DRIVERS))
def test_passes_through_is_what_the_raw_family_was(name: str) -> None:
    driver = get_driver(name)
    assert driver.passes_through is (family(driver) == "raw") is (name == "raw")


def test_postscript_levels_are_one_language_that_collates_from_level_3() -> None:
    level3, level2 = get_driver("postscript"), get_driver("postscript2")
    assert type(level3) is type(level2) and family(level3) == family(level2) == "postscript"
    assert (level3.collates, level2.collates) == (True, False)


def test_a_new_language_is_planned_from_its_routes() -> None:
    caps = DOTS_DRIVER.capabilities
    assert DOTS_DRIVER.accepted_formats(caps) == ("application/octet-stream",
                                                  *DOCUMENT_FORMATS, DOTS)
    pdf = DOTS_DRIVER.plan(PDF, caps)
    assert pdf is not None and pdf.steps == f"{PDF} -> ghostscript(pbmraw) -> dots"
    ghostscript, to_dots = pdf.stages(Context(DOTS_DRIVER, caps, PrintOptions(), Path("in")))
    job = getattr(ghostscript, "job")  # noqa: B009 - the GhostscriptStage
    assert isinstance(job, GhostscriptJob) and "-r120x72" in job.arguments("in.pdf")
    assert to_dots.name == "to-dots"
    assert DOTS_DRIVER.plan("image/gif", caps) is None
    # Its own rules narrow the shared ones; the shared ones still hold.
    options = PrintOptions(print_scaling="fit", sides="two-sided-long-edge")
    assert DOTS_DRIVER.unsupported_options(PNG, caps, options) == ["sides", "print-scaling"]


@pytest.mark.parametrize("pjl", [False, True])
def test_the_job_wrapper_is_the_languages(pjl: bool) -> None:
    caps = DOTS_DRIVER.capabilities.with_pjl(pjl)
    native = DOTS_DRIVER.plan(DOTS, caps)
    assert native is not None
    stages = native.stages(Context(DOTS_DRIVER, caps, PrintOptions()))
    assert [stage.name for stage in stages] == (["pjl"] if pjl else [])


async def _print(tmp_path: Path, source: Path, fmt: str, options: PrintOptions) -> bytes:
    transport = open_transport(f"file://{tmp_path}/out/")
    await transport.start_job(JobInfo(job_id=1))
    await print_document(source, fmt, DOTS_DRIVER, DOTS_DRIVER.capabilities, options,
                         transport)
    await transport.end_job()
    (written,) = (tmp_path / "out").iterdir()
    return written.read_bytes()


async def test_a_new_language_prints_images_at_its_own_resolution(tmp_path: Path) -> None:
    source = tmp_path / "black.png"
    Image.new("L", (40, 20), 0).save(source)
    options = PrintOptions(media="iso_a4_210x297mm", print_scaling="fill")
    out = await _print(tmp_path, source, PNG, options)
    # A4 at 120x72 dpi; "fill" covers the sheet, every row inked.
    assert out == b"DOTS\npage 992x842 120x72 inked 842\nEND\n"


async def test_a_new_language_prints_text_through_its_text_writer(tmp_path: Path) -> None:
    source = tmp_path / "doc.txt"
    source.write_bytes(b"one\ntwo\fthree\n")
    out = await _print(tmp_path, source, TEXT, PrintOptions(page_ranges=((2, 2),)))
    assert out.startswith(b"TEXT ") and out.endswith(b"\nthree\fEND\n")
    assert b"one" not in out
