"""Plain-text line printers and dot-matrix printers in their text mode: the text goes as it
is, with bare line feeds made CR LF and a form feed to eject the last page. PDF and PostScript
become text through Ghostscript's txtwrite (text stays text). Pictures (PWG raster, URF, JPEG,
PNG) print as character art (`drivers.filters.text_art`): each page cut into the printer's
character cells, a character of a luminance ramp per cell, which makes the line printer an
IPP Everywhere printer. The printer counts no copies: the plans repeat the pages (or the
pipeline the document)."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

from drivers.driver import Driver
from drivers.errors import ConversionError
from drivers.filters.gs_text import GhostscriptTextStage
from drivers.filters.planner import Context, Plan, converter, ghostscript_job, raster_plan
from drivers.filters.stage import PageCallback, Stage
from drivers.filters.text_art import TextArtWriter
from drivers.model.capabilities import MEDIA_SIZES, Capabilities, PrintOptions, page_rotation
from drivers.model.formats import (
    IMAGE_FORMATS,
    JPEG,
    PDF,
    PNG,
    POSTSCRIPT,
    PWG_RASTER,
    RASTER_FORMATS,
    TEXT,
    URF,
)

_BARE_LF = re.compile(rb"(?<!\r)\n")
ART_FORMATS = (*RASTER_FORMATS, *IMAGE_FORMATS)  # printed as character art


class LinePrinterText:
    """Converter: text passed through with CR LF line ends; counts pages by form feeds."""

    def __init__(self, on_page: PageCallback) -> None:
        self._on_page = on_page
        self._last = b""
        self._size = 0

    def feed(self, data: bytes) -> Iterator[bytes]:
        if not data:
            return
        prefix = b""
        if data[:1] == b"\n" and self._last == b"\r":
            prefix, data = b"\n", data[1:]
        out = prefix + _BARE_LF.sub(b"\r\n", data)
        self._size += len(out)
        self._last = out[-1:]
        for _ in range(out.count(b"\f")):
            self._on_page()
        yield out

    def finish(self) -> Iterator[bytes]:
        if self._size == 0:
            raise ConversionError("the text document is empty")
        if self._last != b"\f":
            self._on_page()
            yield b"\r\n\f" if self._last not in (b"\n", b"") else b"\f"


MAX_REPEATED_PAGE = 8 << 20  # bytes of one page held to print it again


class PageCopies:
    """Converter for uncollated copies on a printer that cannot count copies: each page
    (ended by a form feed) sent `copies` times in a row; counts every page it sends.

    A page is held until its form feed, so a page is bounded: text with megabytes between
    form feeds is refused (collated copies send the whole document again instead)."""

    def __init__(self, copies: int, on_page: PageCallback) -> None:
        self._copies = copies
        self._on_page = on_page
        self._page = bytearray()

    def feed(self, data: bytes) -> Iterator[bytes]:
        start = 0
        while (end := data.find(b"\f", start)) >= 0:
            self._page += data[start : end + 1]
            start = end + 1
            yield from self._repeat()
        self._page += data[start:]
        if len(self._page) > MAX_REPEATED_PAGE:
            raise ConversionError(
                f"a page of more than {MAX_REPEATED_PAGE >> 20} MiB without a form feed cannot "
                "be repeated for uncollated copies (collated copies can be printed)")

    def finish(self) -> Iterator[bytes]:
        if self._page:  # a last page with no form feed: one keeps its copies apart
            self._page += b"\f"
            yield from self._repeat()

    def _repeat(self) -> Iterator[bytes]:
        page, self._page = bytes(self._page), bytearray()
        for _ in range(self._copies):
            self._on_page()
            yield page


def with_page_copies(context: Context, stages: list[Stage]) -> list[Stage]:
    """Uncollated copies on a printer that cannot count copies: each page repeated here."""
    options = context.options
    if options.copies <= 1 or options.collate:
        return stages
    return [*stages, converter("page-copies",
                               lambda on_page: PageCopies(options.copies, on_page))]


def _line_printer(context: Context) -> list[Stage]:
    return with_page_copies(context, [converter("line-printer", LinePrinterText)])


def _txtwrite(context: Context) -> list[Stage]:
    job = replace(ghostscript_job(context, "txtwrite"), rotation=0)  # reported unsupported
    return with_page_copies(context, [GhostscriptTextStage(job, context.input_path)])


def _art_writer(options: PrintOptions, caps: Capabilities) -> TextArtWriter:
    return TextArtWriter(caps.margins)


def _art_plan(fmt: str) -> Plan:
    """The shared raster pipeline (PWG/URF readers, Pillow for images: placed, fitted, gray)
    into the character-art writer, each page then repeated for uncollated copies."""
    pipeline = raster_plan(fmt, TEXT, "text art", _art_writer, stage_name="text-art")
    build = pipeline.build
    return replace(pipeline, build=lambda context: with_page_copies(context, build(context)),
                   repeats_for_copies=True)


class LinePrinter(Driver):
    family = "text"
    native_formats = (TEXT,)
    convertible = (TEXT, PDF, POSTSCRIPT, PWG_RASTER, URF, JPEG, PNG)

    def route(self, fmt: str) -> Plan:
        if fmt == TEXT:
            return Plan(fmt, fmt, "text -> line printer", _line_printer, repeats_for_copies=True)
        if fmt in ART_FORMATS:
            return _art_plan(fmt)
        return Plan(fmt, TEXT, f"{fmt} -> ghostscript(txtwrite) -> text", _txtwrite,
                    reads_path=True, repeats_for_copies=True, needs_ghostscript=True)

    def honours(self, attribute: str, fmt: str, caps: Capabilities,
                options: PrintOptions) -> bool:
        if attribute == "sides":
            return False  # one side
        if attribute == "print-scaling":
            # A picture is placed on the grid as asked; text flows at its natural size.
            return fmt in ART_FORMATS and super().honours(attribute, fmt, caps, options)
        if attribute == "page-ranges" and fmt == TEXT:
            return False  # the text goes as it is: its pages are the printer's
        if attribute == "orientation-requested" and fmt not in IMAGE_FORMATS:
            # A line printer cannot turn text, nor composed PWG/URF pages; an image is turned
            # before it is cut into cells.
            return page_rotation(options) == 0
        return super().honours(attribute, fmt, caps, options)


DRIVERS = (LinePrinter("text", Capabilities(
    make_and_model="Generic Text Printer", manufacturer="Generic", model="Text Printer",
    command_set=("TXT",), document_formats=LinePrinter.default_formats(),
    resolutions=(72,), default_resolution=72, color=False, duplex=False,
    media=(MEDIA_SIZES["na_letter_8.5x11in"], MEDIA_SIZES["iso_a4_210x297mm"]),
    media_default="na_letter_8.5x11in", print_qualities=(4,), copies_max=99,
    # The quarter inch the text layout keeps clear: pictures are placed inside it too.
    margins=(635, 635, 635, 635),
)),)
