"""Raster pages as character art: the sink alone, fed gray pages drawn in points."""

from __future__ import annotations

import random

import pytest

from drivers.filters.pwg_raster import PwgRasterReader, PwgRasterWriter
from drivers.filters.raster_convert import RasterConverter
from drivers.filters.text_art import RAMP, TextArtWriter, ramp_table
from drivers.filters.urf import UrfReader, UrfWriter
from drivers.model.raster import PixelFormat, RasterPage, Row

LETTER = (612.0, 792.0)
MARGINS = (635, 635, 635, 635)  # a quarter inch: the grid starts 18 points in
Box = tuple[float, float, float, float, int]  # left, top, right, bottom in points; gray


def letter_page(dpi_x: int, dpi_y: int, number: int = 1) -> RasterPage:
    return RasterPage(width=round(LETTER[0] * dpi_x / 72), height=round(LETTER[1] * dpi_y / 72),
                      pixels=PixelFormat.SGRAY_8, dpi_x=dpi_x, dpi_y=dpi_y, number=number,
                      page_width_pt=LETTER[0], page_height_pt=LETTER[1])


def draw(page: RasterPage, boxes: list[Box]) -> list[bytes]:
    """The page's lines: white, with each box filled with its gray."""
    lines = []
    for y in range(page.height):
        line = bytearray(b"\xff" * page.width)
        for left, top, right, bottom, gray in boxes:
            if top * page.dpi_y / 72 <= y < bottom * page.dpi_y / 72:
                x0, x1 = round(left * page.dpi_x / 72), round(right * page.dpi_x / 72)
                line[x0:x1] = bytes([gray]) * (x1 - x0)
        lines.append(bytes(line))
    return lines


def cells(column: int, line: int, columns: int, lines: int, gray: int = 0) -> Box:
    """A box covering exactly these character cells of the Letter grid."""
    return (18 + column * 7.2, 18 + line * 12.0, 18 + (column + columns) * 7.2,
            18 + (line + lines) * 12.0, gray)


def compress(lines: list[bytes]) -> list[Row]:
    rows: list[Row] = []
    for line in lines:
        if rows and rows[-1][0] == line:
            rows[-1] = (line, rows[-1][1] + 1)
        else:
            rows.append((line, 1))
    return rows


def art(pages: list[tuple[RasterPage, list[Row]]], band: int = 32) -> bytes:
    writer = TextArtWriter(MARGINS)
    out = writer.start_job()
    for page, rows in pages:
        out += writer.start_page(page)
        for i in range(0, len(rows), band):
            out += b"".join(writer.write_rows(rows[i : i + band]))
        out += writer.end_page()
    return out + writer.end_job()


def test_ramp_runs_from_blank_to_densest() -> None:
    table = ramp_table()
    assert table[255] == ord(" ") and table[0] == ord("@")
    positions = [RAMP.index(table[gray]) for gray in range(256)]
    assert positions == sorted(positions, reverse=True)  # darker is never lighter
    assert set(positions) == set(range(len(RAMP)))  # every step is used
    for bad in (b"@", b" \f@", b" .\xe9"):
        with pytest.raises(ValueError):
            ramp_table(bad)


def test_a_white_page_is_a_form_feed() -> None:
    page = letter_page(72, 72)
    assert art([(page, [(page.white_line, page.height)])]) == b"\f"


@pytest.mark.parametrize("dpi", [(72, 72), (300, 300), (144, 72), (600, 300)])
def test_cells_land_on_the_grid_at_any_resolution(dpi: tuple[int, int]) -> None:
    page = letter_page(*dpi)
    picture = draw(page, [cells(10, 5, 10, 5), cells(30, 6, 2, 1, gray=128)])
    expected = (b"\r\n" * 5 + b" " * 10 + b"@" * 10 + b"\r\n"
                + b" " * 10 + b"@" * 10 + b" " * 10 + b"==" + b"\r\n"
                + (b" " * 10 + b"@" * 10 + b"\r\n") * 3 + b"\f")
    assert art([(page, compress(picture))]) == expected


def test_a_cell_half_covered_prints_lighter() -> None:
    page = letter_page(72, 72)
    # Columns 0-1 fully black; column 2 black over its left half only, line 0 fully.
    half = (18.0, 18.0, 18 + 2 * 7.2 + 3.6, 30.0, 0)
    assert art([(page, compress(draw(page, [half])))]) == b"@@=\r\n\f"


def test_the_top_margin_and_foot_are_not_printed() -> None:
    page = letter_page(72, 72)
    # Black above the grid (the top 18 points) and below its 63rd line.
    outside = [(0.0, 0.0, 612.0, 18.0, 0), (0.0, 18 + 63 * 12.0, 612.0, 792.0, 0)]
    assert art([(page, compress(draw(page, outside)))]) == b"\f"
    inside = draw(page, [cells(0, 62, 80, 1)])
    assert art([(page, compress(inside))]) == b"\r\n" * 62 + b"@" * 80 + b"\r\n\f"


def test_bands_and_repeats_do_not_change_the_art() -> None:
    rng = random.Random(7)
    page = letter_page(100, 100)
    boxes: list[Box] = [(rng.uniform(0, 600), rng.uniform(0, 780), rng.uniform(0, 612),
                         rng.uniform(0, 792), rng.randrange(256)) for _ in range(25)]
    picture = draw(page, boxes)
    one_by_one = art([(page, [(line, 1) for line in picture])], band=1)
    assert one_by_one == art([(page, compress(picture))], band=7)
    assert one_by_one == art([(page, compress(picture))], band=1000)
    assert 20 < one_by_one.count(b"\r\n") <= 63 and one_by_one.endswith(b"\f")


def test_every_page_ends_with_one_form_feed() -> None:
    first, second = letter_page(72, 72), letter_page(72, 72, number=2)
    out = art([(first, compress(draw(first, [cells(0, 0, 1, 1)]))),
               (second, compress(draw(second, [cells(1, 1, 1, 1)])))])
    assert out == b"@\r\n\f\r\n @\r\n\f"


def test_a_page_narrower_than_the_grid_is_blank_not_stretched() -> None:
    # 200 points tall: 13 lines; 30 points wide: one column after the 18-point margin.
    narrow = RasterPage(width=30, height=200, pixels=PixelFormat.SGRAY_8, dpi_x=72, dpi_y=72)
    assert art([(narrow, [(bytes(30), 200)])]) == b"@\r\n" * 13 + b"\f"
    tiny = narrow.with_changes(width=24)  # black, but no cell fits on it
    assert art([(tiny, [(bytes(24), 200)])]) == b"\f"
    one = RasterPage(width=1, height=1, pixels=PixelFormat.SGRAY_8, dpi_x=72, dpi_y=72)
    assert art([(one, [(b"\x00", 1)])]) == b"\f"


def test_only_gray_pages_are_taken() -> None:
    page = letter_page(72, 72).with_changes(pixels=PixelFormat.SRGB_8)
    with pytest.raises(ValueError):
        TextArtWriter(MARGINS).start_page(page)


# One cell row of the Letter grid (line 0) at 72 dpi: the 12 pixel rows from row 18, its
# cells 0-2 (7.2 pixels each, from pixel 18) in three colours.
COLOUR_CELLS = {  # pixel format: the three colours' bytes, and what they print as
    PixelFormat.SRGB_8: ((b"\xff\x00\x00", b"\x00\xff\x00", b"\x00\x00\xff"), b"*=%"),
    PixelFormat.CMYK_8: ((b"\x00\x00\x00\xff", b"\x00\x00\x00\x80", b"\x00\x00\x00\x00"),
                         b"@+"),
    PixelFormat.BLACK_1: ((b"",), b"@@"),
}


def colour_line(page: RasterPage) -> bytes:
    if page.pixels is PixelFormat.BLACK_1:  # pixels 18-31 (cells 0 and 1 by their centres)
        return bytes([0, 0, 0b00111111, 0xFF]) + bytes(page.bytes_per_line - 4)
    colours, _ = COLOUR_CELLS[page.pixels]
    unit = page.pixels.bits_per_pixel // 8
    line = bytearray(page.white_line)
    for i, colour in enumerate(colours):
        for x in range(round(18 + 7.2 * i), round(18 + 7.2 * (i + 1))):
            line[x * unit : (x + 1) * unit] = colour
    return bytes(line)


@pytest.mark.parametrize("pixels, urf", [*((pixels, False) for pixels in COLOUR_CELLS),
                                          (PixelFormat.SRGB_8, True)])
def test_colour_prints_as_its_luminance(pixels: PixelFormat, urf: bool) -> None:
    """PWG raster and URF pages through the shared reader and converter: red, green and blue
    are as dark as their ITU-R 601 luminance (76, 150, 29 of 255)."""
    page = letter_page(72, 72).with_changes(pixels=pixels)
    rows: list[Row] = [(page.white_line, 18), (colour_line(page), 12),
                       (page.white_line, page.height - 30)]
    if urf:
        writer = UrfWriter()
        data = writer.start(1) + writer.page(page) + writer.rows(rows)
    else:
        pwg = PwgRasterWriter()
        data = pwg.start() + pwg.page(page) + pwg.rows(rows)
    pages: list[int] = []
    converter = RasterConverter(UrfReader() if urf else PwgRasterReader(),
                                TextArtWriter(MARGINS), lambda: pages.append(1))
    out = b"".join(converter.feed(data)) + b"".join(converter.finish())
    assert out == COLOUR_CELLS[pixels][1] + b"\r\n\f"
    assert pages == [1]
