"""Plain text typeset by our own small monospace formatter: page size, margins, wrapping, tabs
and form feeds. A language prints the pages through its `TextWriter` (PostScript in Courier,
PCL and ESC/P in the printer's own fixed-pitch font): the layout is the same for all."""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Protocol

from drivers.errors import ConversionError
from drivers.filters.stage import PageCallback
from drivers.model.capabilities import LANDSCAPE, REVERSE_LANDSCAPE, Capabilities, PrintOptions

CHAR_WIDTH = 7.2  # points: Courier 12 at 10 characters per inch
LINE_HEIGHT = 12.0  # points: 6 lines per inch
FONT_SIZE = 12
TAB = 8
_CONTROL = re.compile(r"[\x00-\x07\x0b\x0e-\x1f\x7f]")


@dataclass(frozen=True)
class TextLayout:
    columns: int
    lines: int
    landscape: bool
    left: float  # margins in points
    top: float
    page_width: float
    page_height: float


MIN_MARGIN = 18.0  # points: a quarter inch, where no printer's text starts


@dataclass(frozen=True)
class CharacterGrid:
    """The character cells of a page: `columns` x `lines` cells of CHAR_WIDTH x LINE_HEIGHT
    points, the first one `left`, `top` points from the sheet's top-left corner."""

    columns: int
    lines: int
    left: float
    top: float


def character_grid(width: float, height: float,
                   margins: tuple[int, int, int, int]) -> CharacterGrid:
    """The grid of a `width` x `height` point page with `margins` (top, bottom, left, right in
    hundredths of a millimetre, at least MIN_MARGIN)."""
    top, bottom, left, right = (max(m * 72 / 2540, MIN_MARGIN) for m in margins)
    # Rounded before flooring: in binary floating point 576 // 7.2 is 79.0, one column short
    # on US Letter.
    columns = max(10, int(round((width - left - right) / CHAR_WIDTH, 6)))
    lines = max(5, int(round((height - top - bottom) / LINE_HEIGHT, 6)))
    return CharacterGrid(columns, lines, left, top)


def layout(options: PrintOptions, caps: Capabilities) -> TextLayout:
    media = options.media_size(caps)
    landscape = options.orientation in (LANDSCAPE, REVERSE_LANDSCAPE)
    width, height = media.width_points, media.height_points
    if landscape:
        width, height = height, width
    grid = character_grid(width, height, caps.margins)
    return TextLayout(grid.columns, grid.lines, landscape, grid.left, grid.top, width, height)


class TextPaginator:
    """Bytes of text in, complete pages (lists of lines) out."""

    def __init__(self, columns: int, lines: int) -> None:
        self.columns, self.lines = columns, lines
        self._decoder = codecs.getincrementaldecoder("utf-8")("replace")
        self._partial = ""
        self._page: list[str] = []
        self._visible = False
        self._overflowed = False
        self.pages = 0

    def feed(self, data: bytes) -> Iterator[list[str]]:
        text = self._partial + self._decoder.decode(data)
        *complete, self._partial = re.split(r"(\r\n|\n|\f)", text)
        yield from self._take(complete)

    def finish(self) -> Iterator[list[str]]:
        text = self._partial + self._decoder.decode(b"", final=True)
        self._partial = ""
        yield from self._take([text, "\f"] if text else [])
        if self._page:
            yield self._flush()
        if not self._visible:
            raise ConversionError("the text document has nothing to print")

    def _take(self, pieces: list[str]) -> Iterator[list[str]]:
        """Pieces alternate: text, separator, text, separator ..."""
        for text, separator in zip(pieces[0::2], pieces[1::2], strict=True):
            if text or separator != "\f":  # text just before a form feed is not a new line
                for line in self._wrap(text):
                    self._page.append(line)
                    self._overflowed = False
                    if len(self._page) == self.lines:
                        yield self._flush()
                        self._overflowed = True
            if separator == "\f":
                if not self._overflowed:  # a full page already went: no blank page after it
                    yield self._flush()
                self._overflowed = False

    def _wrap(self, raw: str) -> list[str]:
        line = _CONTROL.sub("", _overstrike(raw) if "\r" in raw else raw)
        line = line.expandtabs(TAB).rstrip()
        self._visible = self._visible or bool(line)
        width = self.columns
        return [line[i : i + width] for i in range(0, len(line), width)] or [""]

    def _flush(self) -> list[str]:
        page, self._page = self._page, []
        self.pages += 1
        return page


def _overstrike(raw: str) -> str:
    """A carriage return without line feed prints over the line: keep every visible mark."""
    parts = raw.split("\r")
    line = parts[0]
    for part in parts[1:]:
        merged = list(line.ljust(len(part)))
        for i, ch in enumerate(part):
            if ch != " ":
                merged[i] = ch
        line = "".join(merged)
    return line


_TYPOGRAPHY = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201a": "'", "\u2032": "'", "\u201c": '"', "\u201d": '"',
    "\u201e": '"', "\u2033": '"', "\u2013": "-", "\u2014": "-", "\u2212": "-", "\u2010": "-",
    "\u2022": "*", "\u2026": "...", "\u00a0": " ",
})


def to_ascii(text: str) -> str:
    """Unicode made printable on a plain ASCII printer: typography simplified, accents off."""
    decomposed = unicodedata.normalize("NFKD", text.translate(_TYPOGRAPHY))
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.encode("ascii", "replace").decode("ascii")


class TextWriter(Protocol):
    """A language's text pages: the job's start, each page (its lines, already laid out to the
    `TextLayout` the writer was made for) and the job's end, as bytes to send."""

    def start_job(self) -> bytes: ...

    def page(self, lines: list[str]) -> bytes: ...

    def end_job(self) -> bytes: ...


# Makes a language's TextWriter for one job, laid out as the shared formatter lays it out.
TextWriterFactory = Callable[[PrintOptions, Capabilities, TextLayout], TextWriter]


class TextFormatter:
    """Converter: text/plain to pages through a language's TextWriter. The paginator, the page
    selection (page-ranges) and the job's start and end are shared; the writer says how its
    header, each page and its trailer look. The header goes just before the first page
    printed (or at the end, for a job whose every page was skipped)."""

    def __init__(self, make_writer: TextWriterFactory, options: PrintOptions,
                 caps: Capabilities, on_page: PageCallback) -> None:
        self._options = options
        self.layout = layout(options, caps)
        self._writer = make_writer(options, caps, self.layout)
        self._paginator = TextPaginator(self.layout.columns, self.layout.lines)
        self._on_page = on_page
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        for page in self._paginator.feed(data):
            yield from self._page(page)

    def finish(self) -> Iterator[bytes]:
        for page in self._paginator.finish():
            yield from self._page(page)
        yield from self._start()
        yield self._writer.end_job()

    def _start(self) -> Iterator[bytes]:
        if not self._started:
            self._started = True
            yield self._writer.start_job()

    def _page(self, lines: list[str]) -> Iterator[bytes]:
        if not self._options.wants_page(self._paginator.pages):
            return
        yield from self._start()
        yield self._writer.page(lines)
        self._on_page()
