"""The planning toolkit: what a plan is, and the shared routes a language builds its plans from.

A `Plan` says how one document format prints on one printer: the stages that turn the document
into the printer's language, built per job from a `Context`. Which plan a format gets is the
language's decision (`drivers.driver.Driver.plan`); the routes here are the shared pieces:

- `passthrough_plan`: the bytes go as they are (the printer's own language);
- `raster_plan`: the shared raster pipeline (Ghostscript for PDF/PostScript, our readers for
  PWG/URF, Pillow for JPEG/PNG) into the language's raster writer (a `RasterSink`);
- `text_plan`: our text formatter into the language's `TextWriter`;
- `ghostscript_job` / `ghostscript_stage` / `converter`: the parts, for a language whose plans
  are its own (PostScript setup injection, Ghostscript's PCL XL devices).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from drivers.filters.ghostscript import GhostscriptJob, GhostscriptStage, page_list
from drivers.filters.image import ImageToRaster
from drivers.filters.pnm import PnmReader
from drivers.filters.pwg_raster import PwgRasterReader
from drivers.filters.raster_convert import MediaFit, RasterConverter, RasterSource
from drivers.filters.stage import Converter, ConverterStage, PageCallback, Stage
from drivers.filters.text import TextFormatter, TextWriterFactory
from drivers.filters.urf import UrfReader
from drivers.model.capabilities import Capabilities, PrintOptions, page_rotation
from drivers.model.formats import IMAGE_FORMATS, PAGE_FORMATS, PWG_RASTER, RASTER_FORMATS, TEXT
from drivers.model.raster import PixelFormat, RasterSink

if TYPE_CHECKING:
    from drivers.driver import Driver


@dataclass(frozen=True)
class Context:
    """Everything a plan needs to build its stages for one job."""

    driver: Driver
    caps: Capabilities
    options: PrintOptions
    input_path: Path | None = None  # the spooled document, when it is a file


Builder = Callable[[Context], list[Stage]]


@dataclass(frozen=True)
class Plan:
    input_format: str
    output_format: str
    steps: str  # for logs, e.g. "pdf -> ghostscript(pbmraw) -> pcl5"
    build: Builder
    reads_path: bool = False  # the first stage opens Context.input_path itself
    repeats_for_copies: bool = False  # the printer cannot count copies (see `Driver.copy_plan`)
    # Ghostscript may run: without it installed, the format is not offered.
    needs_ghostscript: bool = False

    def stages(self, context: Context) -> list[Stage]:
        return self.build(context)


@dataclass(frozen=True)
class CopyPlan:
    """How a job's copies are made: `passes` conversions of the document, each printed with
    `options` (copies=1 where the pipeline repeats the document), every page sent printed
    `copies_each` times by the printer."""

    passes: int
    options: PrintOptions
    copies_each: int


def ghostscript_available() -> bool:
    return shutil.which("gs") is not None


def passthrough_plan(fmt: str, name: str) -> Plan:
    """The document is already in the printer's language: no stage, the bytes go as they are
    (a language's job wrapper may still add stages around them)."""
    return Plan(fmt, fmt, f"{fmt} -> {name}", lambda context: [])


def converter(name: str, make: Callable[[PageCallback], Converter], pages: bool = True) -> Stage:
    """A stage running a sans-I/O Converter; `pages`: it reports each page it completes."""
    return ConverterStage(name, make, reports_pages=pages)


def ghostscript_job(context: Context, device: str, *extra: str,
                    pages: bool = True) -> GhostscriptJob:
    """A Ghostscript job for the document's pages; pages=False: for our own PostScript, whose
    pages are already selected and turned."""
    options = context.options
    return GhostscriptJob(
        device=device, media=options.media_size(context.caps),
        dpi=options.dpi(context.caps), fit_to_page=options.print_scaling != "none",
        page_list=page_list(options.page_ranges) if pages else "", extra=extra,
        rotation=page_rotation(options) if pages else 0,
    )


def ghostscript_stage(context: Context, job: GhostscriptJob, first: bool = True) -> Stage:
    """Ghostscript running `job`; `first`: it reads the spooled document itself."""
    return GhostscriptStage(job, context.input_path if first else None)


def media_fit(options: PrintOptions, caps: Capabilities) -> MediaFit | None:
    """The media a client asked for, which PWG/URF pages of another size are put on (scaled
    per print-scaling); none asked: each page prints on its own size."""
    if not options.media:
        return None
    media = options.media_size(caps)
    return MediaFit(media.name, media.width_points, media.height_points, options.print_scaling)


def raster_reader(fmt: str) -> RasterSource:
    return PwgRasterReader() if fmt == PWG_RASTER else UrfReader()


# Makes a language's raster writer for one job.
RasterWriterFactory = Callable[[PrintOptions, Capabilities], RasterSink]
# The (x, y) dpi a job's pages are rendered at, where a language's resolutions are not square.
Resolution = Callable[[PrintOptions, Capabilities], tuple[int, int]]

# The Ghostscript device that renders PDF/PostScript pages for a writer, by the pixel format
# asked: 1-bit is Ghostscript's own halftone, 8-bit gray and RGB are left to the writer.
_PNM_DEVICES = {PixelFormat.BLACK_1: "pbmraw", PixelFormat.SGRAY_8: "pgmraw",
                PixelFormat.SRGB_8: "ppmraw"}

RASTER_INPUTS = (*PAGE_FORMATS, *RASTER_FORMATS, *IMAGE_FORMATS)  # what raster_plan can take


def raster_plan(fmt: str, output_format: str, name: str, make_writer: RasterWriterFactory,
                render: PixelFormat = PixelFormat.BLACK_1, stage_name: str = "",
                resolution: Resolution | None = None) -> Plan:
    """`fmt` (PDF, PostScript, PWG, URF, JPEG or PNG) through the shared raster pipeline into
    the language's raster writer, at the job's resolution: `PrintOptions.dpi`, or the (x, y)
    dpi `resolution` gives (a dot-matrix printer's 120x72, say).

    PDF and PostScript are rendered by Ghostscript in `render` pixels (BLACK_1: pbmraw,
    SGRAY_8: pgmraw, SRGB_8: ppmraw); PWG and URF pages are decoded and fitted to the media
    asked; images are placed per print-scaling and orientation. Every page is converted (and
    dithered) to a pixel format the writer accepts. PWG and URF pages keep the resolution
    the client sent them at (one of the printer's `resolutions`): a writer that cannot print
    it raises ConversionError.
    """
    if fmt not in RASTER_INPUTS:
        raise ValueError(f"the raster pipeline cannot read {fmt}")
    device = _PNM_DEVICES[render]
    page_description = fmt in PAGE_FORMATS

    def build(context: Context) -> list[Stage]:
        dpi = resolution(context.options, context.caps) if resolution else None
        stages: list[Stage] = []
        if page_description:
            job = ghostscript_job(context, device)
            if dpi is not None:
                job = replace(job, dpi=dpi[0], dpi_y=dpi[1])
            stages.append(ghostscript_stage(context, job))
        return [*stages, converter(stage_name or f"to-{name}",
                                   lambda on_page: _raster_converter(fmt, context, make_writer,
                                                                     on_page, dpi))]

    via = f"ghostscript({device})" if page_description else "gateway"
    return Plan(fmt, output_format, f"{fmt} -> {via} -> {name}", build,
                reads_path=page_description or fmt in IMAGE_FORMATS,
                needs_ghostscript=page_description)


def _raster_converter(fmt: str, context: Context, make_writer: RasterWriterFactory,
                      on_page: PageCallback, dpi: tuple[int, int] | None) -> Converter:
    options, caps = context.options, context.caps
    writer = make_writer(options, caps)
    if fmt in IMAGE_FORMATS:
        return ImageToRaster(writer, options, caps, on_page, context.input_path, dpi)
    if fmt in RASTER_FORMATS:
        return RasterConverter(raster_reader(fmt), writer, on_page, options.wants_page,
                               options.last_page_wanted(), media_fit(options, caps))
    x, y = dpi or (options.dpi(caps),) * 2
    return RasterConverter(PnmReader(x, dpi_y=y), writer, on_page)


def text_plan(output_format: str, name: str, make_writer: TextWriterFactory,
              stage_name: str = "") -> Plan:
    """text/plain laid out by our formatter (page size, margins, wrapping, form feeds,
    page-ranges) and printed through the language's TextWriter."""

    def build(context: Context) -> list[Stage]:
        options, caps = context.options, context.caps
        return [converter(stage_name or f"text-to-{name}",
                          lambda on_page: TextFormatter(make_writer, options, caps, on_page))]

    return Plan(TEXT, output_format, f"{TEXT} -> gateway -> {name}", build)
