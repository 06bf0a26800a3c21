"""Pixel-format conversion of raster bands: colour to gray, and gray to 1-bit by ordered dither.

Work is done a band at a time through Pillow (C loops), on distinct lines only where the
conversion does not depend on the line's position, so a repeated line is converted once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from PIL import Image, ImageChops

from drivers.filters.packet_reader import INVERT
from drivers.model import accel
from drivers.model.raster import PixelFormat, Row

_MODES = {PixelFormat.SGRAY_8: "L", PixelFormat.SRGB_8: "RGB", PixelFormat.CMYK_8: "CMYK"}

# Fallbacks when a writer cannot take a format, best first.
_FALLBACKS = {
    PixelFormat.CMYK_8: (PixelFormat.SRGB_8, PixelFormat.SGRAY_8, PixelFormat.BLACK_1),
    PixelFormat.SRGB_8: (PixelFormat.SGRAY_8, PixelFormat.BLACK_1),
    PixelFormat.SGRAY_8: (PixelFormat.BLACK_1,),
    PixelFormat.BLACK_1: (PixelFormat.SGRAY_8,),
}


def choose_target(source: PixelFormat, accepted: Sequence[PixelFormat]) -> PixelFormat:
    if source in accepted:
        return source
    for candidate in _FALLBACKS[source]:
        if candidate in accepted:
            return candidate
    raise ValueError(f"no conversion from {source.value} to any of {accepted}")


def _bayer(order: int) -> list[list[int]]:
    matrix = [[0]]
    while len(matrix) < order:
        size = len(matrix)
        matrix = [
            [4 * matrix[y % size][x % size] + (0, 2, 3, 1)[2 * (y // size) + x // size]
             for x in range(2 * size)]
            for y in range(2 * size)
        ]
    return matrix


_DITHER_SIZE = 16
# Thresholds 1..255: gray 0 is always ink and gray 255 never is.
_THRESHOLDS = [
    bytes(1 + value * 254 // 255 for value in row) for row in _bayer(_DITHER_SIZE)
]
_THRESHOLD_MATRIX = b"".join(_THRESHOLDS)  # row after row, as the C codec takes it
_native_dither = accel.native("ordered_dither")


class Ditherer:
    """8-bit gray lines to 1-bit (1 = ink) with a 16x16 Bayer ordered dither."""

    def __init__(self, width: int) -> None:
        self.width = width
        repeat = -(-width // _DITHER_SIZE)
        self._rows = [(row * repeat)[:width] for row in _THRESHOLDS]
        self._white = b"\xff" * width
        self._blank = bytes((width + 7) // 8)

    def dither(self, rows: Sequence[Row], y: int) -> list[Row]:
        """Dither `rows`, whose first line is line `y` of the page."""
        out: list[Row] = []
        pending: list[bytes] = []
        for line, count in rows:
            if line == self._white:
                out.extend(self._run(pending, y - len(pending)))
                pending = []
                out.append((self._blank, count))
            else:
                pending.extend([line] * count)
            y += count
        out.extend(self._run(pending, y - len(pending)))
        return out

    def _run(self, lines: list[bytes], y: int) -> list[Row]:
        if not lines:
            return []
        if _native_dither is not None:
            rows: list[Row] = _native_dither(lines, self.width, y, _THRESHOLD_MATRIX)
            return rows
        return self._run_py(lines, y)

    def _run_py(self, lines: list[bytes], y: int) -> list[Row]:
        """Pillow's C loops a band at a time: the reference for the C `ordered_dither`."""
        if not lines:
            return []
        height, width = len(lines), self.width
        gray = Image.frombytes("L", (width, height), b"".join(lines))
        thresholds = b"".join(self._rows[(y + i) % _DITHER_SIZE] for i in range(height))
        limit = Image.frombytes("L", (width, height), thresholds)
        # threshold - gray, scaled so any positive difference saturates: ink where gray < it
        ink = ImageChops.subtract(limit, gray, scale=1 / 128)
        bits = ink.convert("1", dither=Image.Dither.NONE).tobytes()
        size = (width + 7) // 8
        return [(bits[i * size : (i + 1) * size], 1) for i in range(height)]


def _convert_distinct(rows: Sequence[Row], width: int, source: str, target: str) -> list[Row]:
    if not rows:
        return []
    data = b"".join(line for line, _ in rows)
    converted = Image.frombytes(source, (width, len(rows)), data).convert(target).tobytes()
    size = len(converted) // len(rows)
    return [(converted[i * size : (i + 1) * size], count) for i, (_, count) in enumerate(rows)]


def _black_to_gray(rows: Sequence[Row], width: int) -> list[Row]:
    if not rows:
        return []
    data = b"".join(line for line, _ in rows).translate(INVERT)
    gray = Image.frombytes("1", (width, len(rows)), data).convert("L").tobytes()
    return [(gray[i * width : (i + 1) * width], count) for i, (_, count) in enumerate(rows)]


BandConverter = Callable[[Sequence[Row]], list[Row]]


class PixelAdapter:
    """Converts the bands of one page from `source` to `target`, tracking the line number."""

    def __init__(self, source: PixelFormat, target: PixelFormat, width: int) -> None:
        self.source, self.target, self.width = source, target, width
        self._y = 0
        self._ditherer = Ditherer(width) if target is PixelFormat.BLACK_1 else None
        self._to_gray = self._gray_step()

    def _gray_step(self) -> BandConverter | None:
        width, source = self.width, self.source
        if self.target is PixelFormat.BLACK_1 and source is PixelFormat.BLACK_1:
            return None
        if self.target in (PixelFormat.SGRAY_8, PixelFormat.BLACK_1):
            if source is PixelFormat.BLACK_1:
                return lambda rows: _black_to_gray(rows, width)
            if source is PixelFormat.SGRAY_8:
                return None
            return lambda rows: _convert_distinct(rows, width, _MODES[source], "L")
        if self.target is PixelFormat.SRGB_8 and source is PixelFormat.CMYK_8:
            return lambda rows: _convert_distinct(rows, width, "CMYK", "RGB")
        if self.target is not source:
            raise ValueError(f"cannot convert {source.value} to {self.target.value}")
        return None

    def convert(self, rows: Sequence[Row]) -> list[Row]:
        y = self._y
        self._y += sum(count for _, count in rows)
        converted = self._to_gray(rows) if self._to_gray else list(rows)
        if self._ditherer is not None and self.source is not PixelFormat.BLACK_1:
            return self._ditherer.dither(converted, y)
        return converted
