"""The raster model shared by every reader and writer: pixel layouts, pages, and the events a
reader produces (`PageStart`, any number of `Band`s, `PageEnd`).

A band holds rows as (line bytes, repeat count) pairs, so a blank stretch of 200 lines costs
one line of memory and writers can encode a repeated line once. Memory is bounded by a band.

`RasterSink` is what a printer language's raster writer is: the shared raster pipeline
(`drivers.filters.raster_convert`) feeds it pages in one of the pixel formats it accepts.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from enum import Enum
from typing import Protocol

from drivers.errors import ConversionError


class PixelFormat(Enum):
    """The four pixel layouts the pipeline works in; readers normalise everything else."""

    BLACK_1 = "black_1"  # 1 bit, 1 = black, leftmost pixel in the most significant bit
    SGRAY_8 = "sgray_8"  # 0 = black, 255 = white
    SRGB_8 = "srgb_8"
    CMYK_8 = "cmyk_8"  # 0 = no ink

    @property
    def bits_per_pixel(self) -> int:
        return {"black_1": 1, "sgray_8": 8, "srgb_8": 24, "cmyk_8": 32}[self.value]

    def bytes_per_line(self, width: int) -> int:
        return (width * self.bits_per_pixel + 7) // 8

    @property
    def white(self) -> int:
        """The byte value of a white sample."""
        return 0 if self in (PixelFormat.BLACK_1, PixelFormat.CMYK_8) else 255


@dataclass(frozen=True)
class RasterPage:
    """One page of raster: geometry, pixel layout and what the sender asked of the sheet."""

    width: int
    height: int
    pixels: PixelFormat
    dpi_x: int
    dpi_y: int
    number: int = 1  # 1-based position in the stream
    page_width_pt: float = 0.0  # 0 = derived from width and dpi
    page_height_pt: float = 0.0
    duplex: bool = False
    tumble: bool = False
    copies: int = 1
    media_name: str = ""

    @property
    def bytes_per_line(self) -> int:
        return self.pixels.bytes_per_line(self.width)

    @property
    def size_points(self) -> tuple[float, float]:
        width = self.page_width_pt or self.width * 72 / self.dpi_x
        height = self.page_height_pt or self.height * 72 / self.dpi_y
        return width, height

    @property
    def white_line(self) -> bytes:
        return bytes([self.pixels.white]) * self.bytes_per_line

    def with_changes(self, **changes: object) -> RasterPage:
        return replace(self, **changes)  # type: ignore[arg-type]


Row = tuple[bytes, int]  # line bytes, how many times it repeats


@dataclass(frozen=True)
class PageStart:
    page: RasterPage


@dataclass(frozen=True)
class Band:
    rows: list[Row]


@dataclass(frozen=True)
class PageEnd:
    page: RasterPage


RasterEvent = PageStart | Band | PageEnd


def expand(rows: Iterable[Row]) -> Iterator[bytes]:
    """Every line of a band, repeats spelled out (the same bytes object, no copies)."""
    for line, count in rows:
        for _ in range(count):
            yield line


def row_count(rows: Iterable[Row]) -> int:
    return sum(count for _, count in rows)


@dataclass(frozen=True)
class RasterLimits:
    """What a reader refuses as absurd before allocating anything for it."""

    max_width: int = 40_000  # 66 inches at 600 dpi
    max_height: int = 120_000  # 200 inches at 600 dpi
    max_line_bytes: int = 1 << 20
    max_dpi: int = 4800
    band_rows: int = 32  # distinct lines per Band event

    def check(self, page: RasterPage, line_bytes: int, what: str) -> None:
        if not 0 < page.width <= self.max_width or not 0 < page.height <= self.max_height:
            raise ConversionError(
                f"{what} page {page.number}: absurd size {page.width}x{page.height} pixels"
            )
        if not 0 < page.dpi_x <= self.max_dpi or not 0 < page.dpi_y <= self.max_dpi:
            raise ConversionError(
                f"{what} page {page.number}: absurd resolution {page.dpi_x}x{page.dpi_y} dpi"
            )
        if not 0 < line_bytes <= self.max_line_bytes:
            raise ConversionError(f"{what} page {page.number}: {line_bytes} bytes per line")


DEFAULT_LIMITS = RasterLimits()


class RasterSink(Protocol):
    """A printer language's raster writer. Each method returns the bytes to send; a writer keeps
    what state it needs between calls (a seed row, the page size last set).

    `accepts`: the pixel formats it takes, best first; the pipeline converts (and dithers)
    every page to one of them. `write_rows` gets a band of the current page, top to bottom.
    """

    accepts: tuple[PixelFormat, ...]

    def start_job(self) -> bytes: ...

    def start_page(self, page: RasterPage) -> bytes: ...

    def write_rows(self, rows: list[Row]) -> Iterable[bytes]: ...

    def end_page(self) -> bytes: ...

    def end_job(self) -> bytes: ...
