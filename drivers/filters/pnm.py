"""Streaming reader of raw PNM (P4/P5/P6), the raster Ghostscript writes for our raster path.

Ghostscript's `pbmraw`, `pgmraw` and `ppmraw` devices write one image per page back to back.
PNM carries no resolution, so the reader is told the dpi the renderer was asked for.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

from drivers.errors import ConversionError
from drivers.model.capabilities import media_name_for
from drivers.model.raster import (
    DEFAULT_LIMITS,
    Band,
    PageEnd,
    PageStart,
    PixelFormat,
    RasterEvent,
    RasterLimits,
    RasterPage,
    Row,
)

_GAP = rb"(?:\s+|#[^\n]*\n)+"
_HEADER = re.compile(
    rb"P(?:(4)" + _GAP + rb"(\d+)" + _GAP + rb"(\d+)()"
    rb"|([56])" + _GAP + rb"(\d+)" + _GAP + rb"(\d+)" + _GAP + rb"(\d+))\s"
)
_FORMATS = {b"4": PixelFormat.BLACK_1, b"5": PixelFormat.SGRAY_8, b"6": PixelFormat.SRGB_8}
_MAX_HEADER = 512


class PnmReader:
    """Sans-I/O like the packet readers: `feed()`, drain `events()`, `end_of_input()`."""

    format_name = "PNM"

    def __init__(self, dpi: int, limits: RasterLimits = DEFAULT_LIMITS,
                 dpi_y: int | None = None) -> None:
        self.dpi = dpi
        self.dpi_y = dpi_y or dpi
        self.limits = limits
        self.pages_read = 0
        self._data = b""
        self._eof = False
        self._page: RasterPage | None = None
        self._y = 0

    def feed(self, chunk: bytes) -> None:
        self._data += chunk

    def end_of_input(self) -> None:
        self._eof = True

    def events(self) -> Iterator[RasterEvent]:
        while True:
            if self._page is None:
                start = self._start_page()
                if start is None:
                    return
                yield start
            rows = self._band()
            if rows:
                yield Band(rows)
            page = self._page
            assert page is not None
            if self._y == page.height:
                self._page = None
                yield PageEnd(page)
            elif not rows:
                return

    def _start_page(self) -> PageStart | None:
        match = _HEADER.match(self._data)
        if match is None:
            if self._eof and not self._data and self.pages_read:
                return None
            if self._eof or len(self._data) > _MAX_HEADER or not _could_be_pnm(self._data):
                raise ConversionError("the renderer produced no readable raster")
            return None
        groups = match.groups()
        kind, width, height, maxval = groups[:4] if groups[0] else groups[4:]
        if kind != b"4" and maxval != b"255":
            raise ConversionError(f"renderer raster has maxval {maxval!r}, expected 255")
        self.pages_read += 1
        page = RasterPage(
            width=int(width), height=int(height), pixels=_FORMATS[kind], dpi_x=self.dpi,
            dpi_y=self.dpi_y, number=self.pages_read,
        )
        width_pt, height_pt = page.size_points
        page = page.with_changes(media_name=media_name_for(width_pt, height_pt))
        self.limits.check(page, page.bytes_per_line, self.format_name)
        self._data = self._data[match.end() :]
        self._page, self._y = page, 0
        return PageStart(page)

    def _band(self) -> list[Row]:
        page = self._page
        assert page is not None
        size = page.bytes_per_line
        lines = min(len(self._data) // size, page.height - self._y, self.limits.band_rows * 4)
        if lines == 0 and self._eof and self._y < page.height:
            raise ConversionError(f"renderer raster truncated in page {page.number}")
        data = self._data
        rows: list[Row] = []
        previous = b""
        for offset in range(0, lines * size, size):
            line = data[offset : offset + size]
            if line == previous:
                rows[-1] = (previous, rows[-1][1] + 1)
            else:
                rows.append((line, 1))
                previous = line
        self._data = data[lines * size :]
        self._y += lines
        return rows


def _could_be_pnm(data: bytes) -> bool:
    return not data or data[:1] == b"P"
