"""Streaming reader for the packet-compressed rasters (PWG raster and Apple URF).

Sans-I/O: `feed()` bytes, then drain `events()` until it stops (it wants more data), and call
`end_of_input()` before the last drain. The reader keeps at most one chunk plus two encoded
lines of input and one band of decoded lines, whatever the page size or the compression ratio.
"""

from __future__ import annotations

import sys
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from enum import Enum, auto

from drivers.errors import ConversionError
from drivers.filters.linecodec import LineOverflow, decode_line, max_encoded_line
from drivers.model import accel
from drivers.model.raster import (
    DEFAULT_LIMITS,
    Band,
    PageEnd,
    PageStart,
    RasterEvent,
    RasterLimits,
    RasterPage,
    Row,
)

Normaliser = Callable[[bytes], bytes]

# Decodes the good records of a band in one C call; the Python loop below stays the reference
# and takes over where it stops (band full, input short, or a bad record to report).
_native_decode_band = accel.native("decode_band")


class _State(Enum):
    STREAM_HEADER = auto()
    PAGE_HEADER = auto()
    LINES = auto()
    DONE = auto()


class PageLayout:
    """How a page's lines are encoded and how to turn them into the page's PixelFormat."""

    def __init__(
        self, page: RasterPage, line_bytes: int, unit: int, fill: int, normalise: Normaliser | None
    ) -> None:
        self.page = page
        self.line_bytes = line_bytes  # decoded bytes per line as sent, before normalising
        self.unit = unit  # bytes per compression unit
        self.fill = fill  # the white byte for URF's fill-the-rest packet
        self.normalise = normalise


class PacketRasterReader(ABC):
    format_name = "raster"

    def __init__(self, limits: RasterLimits = DEFAULT_LIMITS) -> None:
        self.limits = limits
        self.pages_read = 0
        self._data = b""
        self._pos = 0
        self._eof = False
        self._state = _State.STREAM_HEADER
        self._layout: PageLayout | None = None
        self._y = 0

    @property
    @abstractmethod
    def stream_header_size(self) -> int: ...

    @property
    @abstractmethod
    def page_header_size(self) -> int: ...

    @abstractmethod
    def parse_stream_header(self, header: bytes) -> None:
        """Check the file header; raise ConversionError if this is not our format."""

    @abstractmethod
    def parse_page_header(self, header: bytes, number: int) -> PageLayout: ...

    @property
    def buffered(self) -> int:
        """Input bytes held, not yet decoded."""
        return len(self._data) - self._pos

    def feed(self, chunk: bytes) -> None:
        if self._eof:
            raise RuntimeError("feed() after end_of_input()")
        self._data = self._data[self._pos :] + chunk if self._pos else self._data + chunk
        self._pos = 0

    def end_of_input(self) -> None:
        self._eof = True

    def events(self) -> Iterator[RasterEvent]:
        """Every event the buffered input allows; stops when more input is needed."""
        while True:
            if self._state is _State.STREAM_HEADER:
                if not self._have(self.stream_header_size, "file header"):
                    return
                self.parse_stream_header(self._take(self.stream_header_size))
                self._state = _State.PAGE_HEADER
            elif self._state is _State.PAGE_HEADER:
                if not self._page_header_ready():
                    return
                yield self._start_page()
            elif self._state is _State.LINES:
                rows = self._decode_band()
                if rows:
                    yield Band(rows)
                assert self._layout is not None
                if self._y == self._layout.page.height:
                    self._state = _State.PAGE_HEADER
                    yield PageEnd(self._layout.page)
                elif not rows:
                    return
            else:
                return

    def _page_header_ready(self) -> bool:
        """Whether a whole page header is buffered; False at the end of the document (which
        is then finished) or while more input is needed."""
        if self._eof and self._pos == len(self._data):
            self._finish()
            return False
        return self._have(self.page_header_size, "page header")

    def _finish(self) -> None:
        self._state = _State.DONE
        if self.pages_read == 0:
            raise ConversionError(f"{self.format_name} document has no pages")

    def _have(self, size: int, what: str) -> bool:
        if len(self._data) - self._pos >= size:
            return True
        if self._eof:
            raise ConversionError(
                f"{self.format_name} document truncated in the {what} of page "
                f"{self.pages_read + 1}"
            )
        return False

    def _take(self, size: int) -> bytes:
        chunk = self._data[self._pos : self._pos + size]
        self._pos += size
        return chunk

    def _start_page(self) -> PageStart:
        number = self.pages_read + 1
        layout = self.parse_page_header(self._take(self.page_header_size), number)
        self.limits.check(layout.page, layout.line_bytes, self.format_name)
        self._layout, self._y = layout, 0
        self.pages_read = number
        self._state = _State.LINES
        return PageStart(layout.page)

    def _decode_band(self) -> list[Row]:
        layout = self._layout
        assert layout is not None
        data, pos, y, height = self._data, self._pos, self._y, layout.page.height
        size, unit, fill, normalise = layout.line_bytes, layout.unit, layout.fill, layout.normalise
        safe_end = len(data) - max_encoded_line(size, unit)
        rows: list[Row] = []
        if _native_decode_band is not None:
            stop_after = sys.maxsize if self._eof else safe_end
            rows, pos, lines = _native_decode_band(
                data, pos, size, unit, fill, self.limits.band_rows, height - y, stop_after
            )
            y += lines
            if normalise:
                rows = [(normalise(line), count) for line, count in rows]
        while y < height and len(rows) < self.limits.band_rows:
            if pos > safe_end and not self._eof:
                break
            try:
                repeat = data[pos] + 1
                line, pos = decode_line(data, pos + 1, size, unit, fill)
            except IndexError:
                raise self._error("truncated", y) from None
            except LineOverflow as exc:
                raise self._error(f"bad line lengths ({exc})", y) from None
            if y + repeat > height:
                raise self._error(f"line repeat {repeat} runs past the {height} lines", y)
            rows.append((normalise(line) if normalise else line, repeat))
            y += repeat
        self._pos, self._y = pos, y
        return rows

    def _error(self, problem: str, y: int) -> ConversionError:
        number = self.pages_read
        return ConversionError(f"{self.format_name} page {number}, line {y + 1}: {problem}")


def high_bytes(line: bytes) -> bytes:
    """16-bit big-endian samples to 8-bit: keep the most significant byte of each."""
    return line[0::2]


INVERT = bytes(range(255, -1, -1))


def inverted(line: bytes) -> bytes:
    return line.translate(INVERT)


def inverted_high_bytes(line: bytes) -> bytes:
    return line[0::2].translate(INVERT)
