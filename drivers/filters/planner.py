"""The conversion plan (architecture.md): given (format, driver, capabilities), the stages that
print it, or None when it cannot be printed.

1. Native to the driver: pass through (with the driver's job wrapper).
2. A direct conversion to the native language exists (PDF/PS -> PostScript or PCL XL through
   Ghostscript): use it.
3. Else rasterise (Ghostscript for PDF/PS, Pillow for JPEG/PNG, our codecs for PWG/URF) and
   feed the language's raster writer; text goes through our formatter.
4. Else unsupported, refused at submit time: `accepted_formats` is what the gateway advertises
   as document-format-supported, computed from the same table.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from drivers.driver import (
    LANDSCAPE,
    PORTRAIT,
    REVERSE_LANDSCAPE,
    REVERSE_PORTRAIT,
    Capabilities,
    Driver,
    PrintOptions,
)
from drivers.filters import formats
from drivers.filters.ghostscript import GhostscriptJob, GhostscriptStage, page_list
from drivers.filters.gs_text import GhostscriptTextStage
from drivers.filters.image import ImageToRaster
from drivers.filters.image_ps import ImageToPostScript
from drivers.filters.pnm import PnmReader
from drivers.filters.pwg_raster import PwgRasterReader
from drivers.filters.raster_convert import MediaFit, RasterConverter, RasterSink, RasterSource
from drivers.filters.sniff import (
    JPEG,
    OCTET_STREAM,
    PCL,
    PCLXL,
    PDF,
    PNG,
    POSTSCRIPT,
    PWG_RASTER,
    TEXT,
    URF,
)
from drivers.filters.stage import Converter, ConverterStage, PageCallback, Stage, Wrapper
from drivers.filters.text import TextToPcl, TextToPostScript
from drivers.filters.urf import UrfReader
from drivers.languages import pclxl
from drivers.languages.pcl import PclRasterWriter
from drivers.languages.postscript import PsJob, PsRasterWriter, SetupInjector, language_level
from drivers.languages.text import LinePrinterText, PageCopies
from drivers.pjl import language_footer, language_header

PAGE_FORMATS = (PDF, POSTSCRIPT)
RASTER_FORMATS = (PWG_RASTER, URF)
IMAGE_FORMATS = (JPEG, PNG)


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
    repeats_for_copies: bool = False  # the printer cannot count copies (see `copy_plan`)

    def stages(self, context: Context) -> list[Stage]:
        return self.build(context)


def family(driver: Driver) -> str:
    return formats.FAMILY.get(driver.name, "raw")


def _ghostscript_available() -> bool:
    return shutil.which("gs") is not None


def accepted_formats(driver: Driver, caps: Capabilities) -> tuple[str, ...]:
    """document-format-supported: exactly the formats `plan` has a plan for."""
    if family(driver) == "raw":
        return caps.document_formats
    candidates = formats.accepted_by(family(driver))
    allowed = [f for f in candidates if f in caps.document_formats]
    return tuple(f for f in allowed if f == OCTET_STREAM or plan(f, driver, caps) is not None)


def plan(fmt: str, driver: Driver, caps: Capabilities) -> Plan | None:
    """How to print `fmt` (a concrete format: sniff octet-stream first) on this printer."""
    kind = family(driver)
    if kind == "raw":
        return _passthrough(fmt, "raw") if fmt in caps.document_formats else None
    if fmt not in formats.CONVERTIBLE[kind] or fmt not in caps.document_formats:
        return None
    needs_gs = fmt in PAGE_FORMATS or (kind == "pclxl" and fmt not in driver.native_formats)
    if needs_gs and not _ghostscript_available():
        return None
    if fmt in driver.native_formats:
        return _native(fmt, driver)
    return _PLANNERS[kind](fmt, driver)


def _passthrough(fmt: str, name: str) -> Plan:
    return Plan(fmt, fmt, f"{fmt} -> {name}", lambda context: [])


def _native(fmt: str, driver: Driver) -> Plan:
    if fmt == POSTSCRIPT:
        return Plan(fmt, fmt, "postscript -> setup -> postscript",
                    lambda c: _with_pjl(c, _postscript_native(c), POSTSCRIPT))
    if fmt == TEXT:
        return Plan(fmt, fmt, "text -> line printer", lambda c: _with_page_copies(c, [_converter(
            "line-printer", lambda on_page: LinePrinterText(on_page))]), repeats_for_copies=True)
    return Plan(fmt, fmt, f"{fmt} -> {driver.name}", lambda c: _with_pjl(c, [], fmt))


def page_rotation(options: PrintOptions) -> int:
    """orientation-requested as degrees anti-clockwise (RFC 8011 5.2.10); portrait or none: 0."""
    return {LANDSCAPE: 90, REVERSE_LANDSCAPE: 270, REVERSE_PORTRAIT: 180}.get(
        options.orientation or PORTRAIT, 0)


def _postscript_native(context: Context) -> list[Stage]:
    options = context.options
    if (options.page_ranges or page_rotation(options)
            or (context.caps.color and not options.in_color(context.caps))):
        # Only Ghostscript can select, turn or gray the pages; this plan streams the document
        # to it.
        return _ps_via_ghostscript(context, from_file=False)
    level = language_level(context.driver)
    return [_converter("ps-setup",
                       lambda on_page: SetupInjector(options, context.caps, on_page, level))]


def _converter(name: str, make: Callable[[PageCallback], Converter], pages: bool = True) -> Stage:
    return ConverterStage(name, make, reports_pages=pages)


def _gs_job(context: Context, device: str, *extra: str, pages: bool = True) -> GhostscriptJob:
    """A Ghostscript job for the document's pages; pages=False: for our own PostScript, whose
    pages are already selected and turned."""
    options = context.options
    return GhostscriptJob(
        device=device, media=options.media_size(context.caps),
        dpi=options.dpi(context.caps), fit_to_page=options.print_scaling != "none",
        page_list=page_list(options.page_ranges) if pages else "", extra=extra,
        rotation=page_rotation(options) if pages else 0,
    )


def _gs(context: Context, job: GhostscriptJob, first: bool = True) -> GhostscriptStage:
    return GhostscriptStage(job, context.input_path if first else None)


def _ps_via_ghostscript(context: Context, from_file: bool = True) -> list[Stage]:
    gray = () if context.options.in_color(context.caps) else (
        "-sColorConversionStrategy=Gray", "-dProcessColorModel=/DeviceGray")
    job = replace(_gs_job(context, "ps2write", *gray), dpi=None)
    options, caps, level = context.options, context.caps, language_level(context.driver)
    # The pages are counted in ps2write's output: Ghostscript's page hook also counts the
    # PostScript pages that -sPageList skips.
    return [GhostscriptStage(job, context.input_path if from_file else None),
            _converter("ps-setup", lambda on_page: SetupInjector(options, caps, on_page, level))]


def _media_fit(options: PrintOptions, caps: Capabilities) -> MediaFit | None:
    """The media a client asked for, which PWG/URF pages of another size are put on (scaled
    per print-scaling); none asked: each page prints on its own size."""
    if not options.media:
        return None
    media = options.media_size(caps)
    return MediaFit(media.name, media.width_points, media.height_points, options.print_scaling)


def _raster_reader(fmt: str) -> RasterSource:
    return PwgRasterReader() if fmt == PWG_RASTER else UrfReader()


def _ps_stages(fmt: str, context: Context, level: int) -> list[Stage]:
    """Our own PostScript for every non-page format (also the way into PCL XL)."""
    options, caps, path = context.options, context.caps, context.input_path
    if fmt in RASTER_FORMATS:
        def make_raster(on_page: PageCallback) -> Converter:
            writer = PsRasterWriter(PsJob(options, caps, level))
            return RasterConverter(_raster_reader(fmt), writer, on_page, options.wants_page,
                                   options.last_page_wanted(), _media_fit(options, caps))
        return [_converter("raster-to-ps", make_raster)]
    if fmt in IMAGE_FORMATS:
        return [_converter("image-to-ps",
                           lambda on_page: ImageToPostScript(PsJob(options, caps, level), on_page,
                                                             path))]
    return [_converter("text-to-ps",
                       lambda on_page: TextToPostScript(PsJob(options, caps, level), on_page))]


def _plan_postscript(fmt: str, driver: Driver) -> Plan:
    steps = f"{fmt} -> {'ghostscript(ps2write)' if fmt == PDF else 'gateway'} -> postscript"
    if fmt == PDF:
        return Plan(fmt, POSTSCRIPT, steps,
                    lambda c: _with_pjl(c, _ps_via_ghostscript(c), POSTSCRIPT), reads_path=True)
    level = language_level(driver)
    return Plan(fmt, POSTSCRIPT, steps,
                lambda c: _with_pjl(c, _ps_stages(fmt, c, level), POSTSCRIPT),
                reads_path=fmt in IMAGE_FORMATS)


def _pcl_raster(fmt: str, context: Context, on_page: PageCallback) -> Converter:
    options, caps = context.options, context.caps
    writer: RasterSink = PclRasterWriter(options, caps)
    if fmt in IMAGE_FORMATS:
        return ImageToRaster(writer, options, caps, on_page, context.input_path)
    if fmt in RASTER_FORMATS:
        return RasterConverter(_raster_reader(fmt), writer, on_page, options.wants_page,
                               options.last_page_wanted(), _media_fit(options, caps))
    return RasterConverter(PnmReader(options.dpi(caps)), writer, on_page)


def _build_pcl5(fmt: str, context: Context) -> list[Stage]:
    stages: list[Stage] = []
    if fmt in PAGE_FORMATS:
        stages.append(_gs(context, _gs_job(context, "pbmraw")))
    if fmt == TEXT:
        options, caps = context.options, context.caps
        stages.append(_converter("text-to-pcl", lambda on_page: TextToPcl(options, caps, on_page)))
    else:
        stages.append(_converter("to-pcl", lambda on_page: _pcl_raster(fmt, context, on_page)))
    return _with_pjl(context, stages, PCL)


def _with_pjl(context: Context, stages: list[Stage], fmt: str) -> list[Stage]:
    language = {PCL: "PCL", POSTSCRIPT: "POSTSCRIPT"}.get(fmt)
    if language is None or "PJL" not in context.caps.command_set:
        return stages
    head, tail = language_header(language), language_footer()
    return [*stages, _converter("pjl", lambda _: Wrapper(head, tail), False)]


def _plan_pcl5(fmt: str, driver: Driver) -> Plan:
    via = "ghostscript(pbmraw)" if fmt in PAGE_FORMATS else "gateway"
    return Plan(fmt, PCL, f"{fmt} -> {via} -> pcl5", lambda c: _build_pcl5(fmt, c),
                reads_path=fmt in PAGE_FORMATS or fmt in IMAGE_FORMATS)


def _build_pclxl(fmt: str, context: Context) -> list[Stage]:
    options, caps = context.options, context.caps
    device = pclxl.device(options, caps)
    extra = pclxl.device_arguments(options, caps)
    if fmt in PAGE_FORMATS:
        return [_gs(context, _gs_job(context, device, *extra))]
    # Our PostScript asks for the copies and duplex; the pxl device turns them into PCL XL.
    job = replace(_gs_job(context, device, *extra, pages=False), fit_to_page=False)
    return [*_ps_stages(fmt, context, 3), _gs(context, job, first=False)]


def _plan_pclxl(fmt: str, driver: Driver) -> Plan:
    return Plan(fmt, PCLXL, f"{fmt} -> {'' if fmt in PAGE_FORMATS else 'postscript -> '}"
                f"ghostscript(pxl) -> pclxl", lambda c: _build_pclxl(fmt, c),
                reads_path=fmt in PAGE_FORMATS or fmt in IMAGE_FORMATS)


def _plan_text(fmt: str, driver: Driver) -> Plan:
    def build(context: Context) -> list[Stage]:
        job = replace(_gs_job(context, "txtwrite"), rotation=0)  # reported: see below
        return _with_page_copies(context, [GhostscriptTextStage(job, context.input_path)])
    return Plan(fmt, TEXT, f"{fmt} -> ghostscript(txtwrite) -> text", build, reads_path=True,
                repeats_for_copies=True)


def _with_page_copies(context: Context, stages: list[Stage]) -> list[Stage]:
    """Uncollated copies on a printer that cannot count copies: each page repeated here."""
    options = context.options
    if options.copies <= 1 or options.collate:
        return stages
    return [*stages, _converter("page-copies",
                                lambda on_page: PageCopies(options.copies, on_page))]


_PLANNERS: dict[str, Callable[[str, Driver], Plan]] = {
    "postscript": _plan_postscript,
    "pcl5": _plan_pcl5,
    "pclxl": _plan_pclxl,
    "text": _plan_text,
}


def unsupported_options(fmt: str, driver: Driver, caps: Capabilities,
                        options: PrintOptions) -> list[str]:
    """IPP attributes of `options` this printer cannot honour for `fmt` (for Validate-Job and
    the unsupported-attributes group): never ignored silently."""
    kind = family(driver)
    default = PrintOptions()
    unsupported = []
    if options.sides != "one-sided" and (not caps.duplex or kind in ("raw", "text")):
        unsupported.append("sides")
    if options.copies > 1 and kind == "raw":
        unsupported.append("copies")
    if options.page_ranges and (kind == "raw" or fmt in IMAGE_FORMATS
                                or (fmt == TEXT and kind == "text")):
        unsupported.append("page-ranges")
    if kind == "raw":
        unsupported += _layout_changes(options, default)
    rotation = page_rotation(options)
    if rotation and kind != "raw" and (kind == "text" or fmt in RASTER_FORMATS):
        # A line printer cannot turn text; PWG/URF pages come composed and turned by the client.
        unsupported.append("orientation-requested")
    fill = options.print_scaling == "fill"
    if kind != "raw" and options.print_scaling != default.print_scaling and (
            kind == "text" or (fill and (fmt in PAGE_FORMATS or fmt == TEXT))):
        # Ghostscript fits pages (fit, auto, auto-fit) or leaves them (none): it cannot fill.
        # Text is flowed onto the page, which fits it at its natural size; crop it to fill
        # the sheet would lose lines.
        unsupported.append("print-scaling")
    if options.color_mode == "color" and not caps.color:
        unsupported.append("print-color-mode")
    if options.media and caps.media_size(options.media) is None:
        unsupported.append("media")
    return unsupported


def _layout_changes(options: PrintOptions, default: PrintOptions) -> list[str]:
    """The page-layout attributes asked away from their defaults (a raw queue honours none)."""
    return [attribute for name, attribute in (("orientation", "orientation-requested"),
                                              ("print_scaling", "print-scaling"),
                                              ("color_mode", "print-color-mode"))
            if getattr(options, name) != getattr(default, name)]


@dataclass(frozen=True)
class CopyPlan:
    """How a job's copies are made: `passes` conversions of the document, each printed with
    `options` (copies=1 where the pipeline repeats the document), every page sent printed
    `copies_each` times by the printer."""

    passes: int
    options: PrintOptions
    copies_each: int


def copy_plan(chosen: Plan, fmt: str, driver: Driver, caps: Capabilities,
              options: PrintOptions) -> CopyPlan:
    """Collated copies (multiple-document-handling) on every printer.

    The printer's own copy count is used where it gives the order asked for: uncollated
    copies (PCL 5 ESC&l#X, PCL XL PageCopies and PostScript /NumCopies all repeat each page),
    collated copies in a language that collates (PostScript level 3 /Collate), and a document
    of one page, whose two orders are the same. Otherwise collated copies are the document sent
    once per copy. The page count is not known before converting (PDF, PostScript, text, PWG
    and URF, whose header counts a client may leave wrong), so only images and a page-ranges
    of one page count as one page; any other document is repeated, which is right whatever its
    length."""
    copies = options.copies
    once = replace(options, copies=1)
    if copies <= 1 or family(driver) == "raw":  # raw: copies are reported unsupported
        return CopyPlan(1, options, 1)
    one_page = single_page(fmt, driver, caps, options)
    if chosen.repeats_for_copies:  # no copy count at all: the pipeline makes every copy
        if options.collate or one_page:
            return CopyPlan(copies, once, 1)
        return CopyPlan(1, options, 1)  # the plan repeats each page (`_with_page_copies`)
    if options.collate and not one_page and not driver.collates:
        return CopyPlan(copies, once, 1)
    return CopyPlan(1, options, copies)


def single_page(fmt: str, driver: Driver, caps: Capabilities, options: PrintOptions) -> bool:
    """Whether this document is known, before converting it, to print as one page."""
    if fmt in IMAGE_FORMATS:
        return True
    if not options.page_ranges or "page-ranges" in unsupported_options(fmt, driver, caps,
                                                                       options):
        return False
    pages: set[int] = set()
    for lo, hi in options.page_ranges:
        if hi - lo > 1:
            return False
        pages.update(range(lo, hi + 1))
    return len(pages) == 1
