"""Plain text typeset by our own small monospace formatter: page size, margins, wrapping, tabs
and form feeds, to PostScript (Courier) or PCL (the printer's Courier)."""

from __future__ import annotations

import codecs
import re
from collections.abc import Iterator
from dataclasses import dataclass

from drivers.driver import LANDSCAPE, REVERSE_LANDSCAPE, Capabilities, PrintOptions
from drivers.errors import ConversionError
from drivers.filters.stage import PageCallback
from drivers.languages.pcl import PclTextWriter
from drivers.languages.postscript import PsJob, ps_string

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


def layout(options: PrintOptions, caps: Capabilities) -> TextLayout:
    media = options.media_size(caps)
    landscape = options.orientation in (LANDSCAPE, REVERSE_LANDSCAPE)
    width, height = media.width_points, media.height_points
    if landscape:
        width, height = height, width
    top, bottom, left, right = (max(m * 72 / 2540, 18.0) for m in caps.margins)
    columns = max(10, int((width - left - right) // CHAR_WIDTH))
    lines = max(5, int((height - top - bottom) // LINE_HEIGHT))
    return TextLayout(columns, lines, landscape, left, top, width, height)


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


class _PaginatedText:
    """Text to pages: the paginator, the page selection and the job's start and end; a
    language only says how its header, each page and its trailer look."""

    def __init__(self, options: PrintOptions, caps: Capabilities, on_page: PageCallback) -> None:
        self._options = options
        self._layout = layout(options, caps)
        self._paginator = TextPaginator(self._layout.columns, self._layout.lines)
        self._on_page = on_page
        self._started = False

    def feed(self, data: bytes) -> Iterator[bytes]:
        for page in self._paginator.feed(data):
            yield from self._page(page)

    def finish(self) -> Iterator[bytes]:
        for page in self._paginator.finish():
            yield from self._page(page)
        yield from self._start()
        yield self._trailer()

    def _start(self) -> Iterator[bytes]:
        if not self._started:
            self._started = True
            yield self._header()

    def _page(self, lines: list[str]) -> Iterator[bytes]:
        if not self._options.wants_page(self._paginator.pages):
            return
        yield from self._start()
        yield self._render(lines)
        self._on_page()

    def _header(self) -> bytes:
        raise NotImplementedError

    def _render(self, lines: list[str]) -> bytes:
        raise NotImplementedError

    def _trailer(self) -> bytes:
        raise NotImplementedError


class TextToPostScript(_PaginatedText):
    """Converter: text/plain to a PostScript job in Courier."""

    def __init__(self, job: PsJob, on_page: PageCallback) -> None:
        super().__init__(job.options, job.caps, on_page)
        self.job = job

    def _header(self) -> bytes:
        return self.job.header() + (
            b"/GwFont /Courier findfont dup length dict begin { 1 index /FID ne { def } "
            b"{ pop pop } ifelse } forall /Encoding ISOLatin1Encoding def currentdict end "
            b"definefont pop\n"
        )

    def _trailer(self) -> bytes:
        return self.job.trailer()

    def _render(self, lines: list[str]) -> bytes:
        media = self.job.options.media_size(self.job.caps)
        out = [self.job.page_start(media.width_points, media.height_points).decode("ascii")]
        geometry = self._layout
        if geometry.landscape:
            out.append(f"{media.width_points:.2f} 0 translate 90 rotate\n")
        out.append(f"/GwFont findfont {FONT_SIZE} scalefont setfont\n")
        y = geometry.page_height - geometry.top - FONT_SIZE * 0.8
        for line in lines:
            if line.strip():
                out.append(f"{geometry.left:.2f} {y:.2f} moveto {ps_string(line)} show\n")
            y -= LINE_HEIGHT
        return "".join(out).encode("latin-1", "replace") + self.job.page_end()


class TextToPcl(_PaginatedText):
    """Converter: text/plain to PCL 5 text in the printer's own fixed-pitch font."""

    def __init__(self, options: PrintOptions, caps: Capabilities, on_page: PageCallback) -> None:
        super().__init__(options, caps, on_page)
        self._writer = PclTextWriter(options, caps, self._layout.landscape)
        # PCL's logical page starts 1/4 inch in and its top margin counts in lines.
        self._left_columns = max(0, round((self._layout.left - 18) / CHAR_WIDTH))
        self._top_lines = max(1, round(self._layout.top / LINE_HEIGHT))

    def _header(self) -> bytes:
        return self._writer.start_job(self._left_columns, self._top_lines)

    def _render(self, lines: list[str]) -> bytes:
        return self._writer.page(lines)

    def _trailer(self) -> bytes:
        return self._writer.end_job()
