"""The raster model shared by every reader and writer, and the PWG/URF line codec.

A reader turns bytes into events: `PageStart`, any number of `Band`s, `PageEnd`. A band holds
rows as (line bytes, repeat count) pairs, so a blank stretch of 200 lines costs one line of
memory and writers can encode a repeated line once. Memory is bounded by a band.

The line codec is PWG 5102.4 / Apple raster compression (protocols.md 9.4): a line-repeat
byte, then packets of pixel units — 0x00-0x7F repeat the next unit n+1 times, 0x81-0xFF copy
257-n units, 0x80 (URF) fills the rest of the line with white.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from enum import Enum

from drivers.errors import ConversionError
from drivers.filters import accel
from drivers.filters.accel import LineOverflow as LineOverflow  # next to the C codec raising it


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


def media_name_for(width_pt: float, height_pt: float) -> str:
    """The PWG name of the known media within 2 points of this size (either orientation)."""
    # Imported here: drivers.driver loads the languages, which import this module.
    from drivers.driver import MEDIA_SIZES

    for media in MEDIA_SIZES.values():
        w, h = media.width_points, media.height_points
        for a, b in ((w, h), (h, w)):
            if abs(a - width_pt) <= 2 and abs(b - height_pt) <= 2:
                return media.name
    return ""


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

# A run packet of one byte-sized unit, prebuilt: index (count - 1) << 8 | value.
_RUNS_OF_BYTES = [bytes([value]) * (count + 1) for count in range(128) for value in range(256)]


def decode_line_py(data: bytes, pos: int, size: int, unit: int, fill: int) -> tuple[bytes, int]:
    """Decode the packets of one line of `size` bytes starting at `pos` (after the repeat byte).

    Returns the line and the position after it. Raises IndexError when `data` ends inside the
    line and LineOverflow when the packets do not add up to the line. The reference for the
    C `decode_line` of drivers.filters.accel (which also wants pos >= 0, unit >= 1).
    """
    out: list[bytes] = []
    append = out.append
    done = 0
    if unit == 1:
        runs = _RUNS_OF_BYTES
        while done < size:
            control = data[pos]
            if control < 128:
                append(runs[(control << 8) | data[pos + 1]])
                pos += 2
                done += control + 1
            elif control > 128:
                end = pos + 258 - control
                append(data[pos + 1 : end])
                done += 257 - control
                pos = end
            else:
                append(bytes([fill]) * (size - done))
                pos += 1
                done = size
    else:
        while done < size:
            control = data[pos]
            if control < 128:
                end = pos + 1 + unit
                append(data[pos + 1 : end] * (control + 1))
                done += unit * (control + 1)
            elif control > 128:
                end = pos + 1 + unit * (257 - control)
                append(data[pos + 1 : end])
                done += unit * (257 - control)
            else:
                append(bytes([fill]) * (size - done))
                end = pos + 1
                done = size
            pos = end
    line = b"".join(out)
    if len(line) != size:
        if done == size:  # a literal ran past the end of the data
            raise IndexError("line data ends early")
        raise LineOverflow(f"packets make {done} bytes in a line of {size}")
    return line, pos


decode_line = accel.choose("decode_line", decode_line_py)


def max_encoded_line(size: int, unit: int) -> int:
    """An upper bound of one encoded line, repeat byte included, plus one overflowing packet."""
    return 1 + size + size // unit + 1 + 128 * unit


_BYTE_RUNS = re.compile(rb"(.)\1+", re.DOTALL)
_UNIT_RUNS: dict[int, re.Pattern[bytes]] = {}


def _runs(line: bytes, unit: int) -> Iterator[tuple[int, int]]:
    """(start, end) of every run of two or more equal units, aligned to unit boundaries."""
    if unit == 1:
        for byte_run in _BYTE_RUNS.finditer(line):
            yield byte_run.span()
        return
    pattern = _UNIT_RUNS.setdefault(unit, re.compile(rb"(.{%d})\1+" % unit, re.DOTALL))
    pos = 0
    while (match := pattern.search(line, pos)) is not None:
        start, end = match.span()
        aligned = -(-start // unit) * unit
        aligned_end = aligned + (end - aligned) // unit * unit
        if aligned_end - aligned >= 2 * unit:
            yield aligned, aligned_end
            pos = aligned_end
        else:
            pos = start + 1


def _literal_packets(out: bytearray, chunk: bytes, unit: int) -> None:
    step = 128 * unit
    for offset in range(0, len(chunk), step):
        piece = chunk[offset : offset + step]
        count = len(piece) // unit
        out.append(0 if count == 1 else 257 - count)
        out += piece


def encode_packets(line: bytes, unit: int) -> bytes:
    """One line as packets (no repeat byte). Never emits 0x80, which PWG does not define."""
    out = bytearray()
    pos = 0
    for start, end in _runs(line, unit):
        if start > pos:
            _literal_packets(out, line[pos:start], unit)
        pixel = line[start : start + unit]
        count = (end - start) // unit
        while count > 0:
            take = min(count, 128)
            out.append(take - 1)
            out += pixel
            count -= take
        pos = end
    if pos < len(line):
        _literal_packets(out, line[pos:], unit)
    return bytes(out)


def encode_rows(rows: Iterable[Row], unit: int) -> bytes:
    """Lines with their repeat bytes: consecutive equal lines share one record of up to 256."""
    out = bytearray()
    previous: bytes | None = None
    pending = 0
    for line, count in rows:
        if line is not previous and line != previous:
            if previous is not None:
                _flush_rows(out, previous, pending, unit)
            previous, pending = line, 0
        pending += count
    if previous is not None:
        _flush_rows(out, previous, pending, unit)
    return bytes(out)


def _flush_rows(out: bytearray, line: bytes, count: int, unit: int) -> None:
    packets = encode_packets(line, unit)
    while count > 0:
        take = min(count, 256)
        out.append(take - 1)
        out += packets
        count -= take
