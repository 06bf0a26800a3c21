"""Pixel conversions: colour to gray, ordered dither, format choice."""

from __future__ import annotations

import pytest

from drivers.filters.convert import Ditherer, PixelAdapter, choose_target
from drivers.model.raster import PixelFormat


def ink_ratio(rows: list[tuple[bytes, int]]) -> float:
    bits = sum(bin(byte).count("1") * count for row, count in rows for byte in row)
    total = sum(len(row) * 8 * count for row, count in rows)
    return bits / total


@pytest.mark.parametrize("level", [0, 32, 128, 200, 255])
def test_dither_reproduces_the_gray_level(level: int) -> None:
    rows = Ditherer(64).dither([(bytes([level]) * 64, 64)], 0)
    assert sum(count for _, count in rows) == 64
    assert abs(ink_ratio(rows) - (255 - level) / 255) < 0.02


def test_dither_solid_black_and_white_are_exact() -> None:
    rows = Ditherer(20).dither([(b"\0" * 20, 3), (b"\xff" * 20, 5)], 7)
    assert rows[:3] == [(b"\xff\xff\xf0", 1)] * 3
    assert rows[3] == (bytes(3), 5)  # white stays one repeated row


def test_dither_depends_on_the_line_number_only_through_the_matrix() -> None:
    line = bytes(range(0, 256, 4))
    first = Ditherer(64).dither([(line, 1)], 5)
    again = Ditherer(64).dither([(line, 1)], 5 + 16)
    assert first == again


@pytest.mark.parametrize("source, accepted, expected", [
    (PixelFormat.SRGB_8, (PixelFormat.BLACK_1,), PixelFormat.BLACK_1),
    (PixelFormat.SRGB_8, (PixelFormat.SGRAY_8, PixelFormat.BLACK_1), PixelFormat.SGRAY_8),
    (PixelFormat.CMYK_8, (PixelFormat.SRGB_8, PixelFormat.SGRAY_8), PixelFormat.SRGB_8),
    (PixelFormat.BLACK_1, (PixelFormat.SGRAY_8,), PixelFormat.SGRAY_8),
    (PixelFormat.SGRAY_8, (PixelFormat.SGRAY_8,), PixelFormat.SGRAY_8),
])
def test_choose_target(source: PixelFormat, accepted: tuple[PixelFormat, ...],
                       expected: PixelFormat) -> None:
    assert choose_target(source, accepted) is expected


def test_adapter_colour_to_gray_and_to_bits() -> None:
    red, white = b"\xff\0\0" * 4, b"\xff" * 12
    gray = PixelAdapter(PixelFormat.SRGB_8, PixelFormat.SGRAY_8, 4).convert([(red, 2), (white, 1)])
    assert gray == [(bytes([76]) * 4, 2), (b"\xff" * 4, 1)]
    bits = PixelAdapter(PixelFormat.CMYK_8, PixelFormat.BLACK_1, 8).convert(
        [(b"\0\0\0\xff" * 8, 1)])
    assert bits == [(b"\xff", 1)]
    gray = PixelAdapter(PixelFormat.BLACK_1, PixelFormat.SGRAY_8, 8).convert([(b"\xf0", 1)])
    assert gray == [(b"\0" * 4 + b"\xff" * 4, 1)]
