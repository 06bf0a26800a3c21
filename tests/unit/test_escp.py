"""ESC/P and ESC/P 2 writers, proven by the test-side reader of tests/support/escp_decoder.py
and by exact bytes written out by hand from Epson's ESC/P reference."""

from __future__ import annotations

import math
import random
import re
import shutil
import subprocess
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import pytest

from drivers.errors import ConversionError
from drivers.filters.planner import Context, CopyPlan
from drivers.filters.stage import ConverterStage
from drivers.filters.text import TextFormatter, TextLayout
from drivers.languages.escp import (
    MODELS,
    Escp,
    EscpModel,
    EscpRaster,
    EscpRasterWriter,
    EscpText,
    EscpTextLayout,
    _Resampler,
    _Transposer,
    escp2_rle,
    formatter_layout,
)
from drivers.model.capabilities import (
    LANDSCAPE,
    MEDIA_SIZES,
    PORTRAIT,
    REVERSE_PORTRAIT,
    MediaSize,
    PrintOptions,
)
from drivers.model.formats import DOCUMENT_FORMATS, PDF, TEXT
from drivers.model.raster import PixelFormat, RasterPage, Row
from drivers.registry import get_driver
from tests.support.escp_decoder import EscpJob, decode_escp

ESC = b"\x1b"
CORPUS = Path("/work/shared/corpus")
A4_PT = (595.28, 841.89)
MODES = [(name, mode.quality) for name, model in MODELS.items() for mode in model.modes]


def decode(data: bytes, model: EscpModel, quality: int) -> EscpJob:
    mode = model.mode(quality)
    return decode_escp(data, model.kind, (mode.dpi_x, mode.dpi_y), model.printable_width_in,
                       model.text_columns)


def page_for(model: EscpModel, quality: int, width: int, height: int,
             height_pt: float = 0.0) -> RasterPage:
    mode = model.mode(quality)
    return RasterPage(width, height, PixelFormat.BLACK_1, mode.dpi_x, mode.dpi_y,
                      page_height_pt=height_pt)


def write(writer: EscpRasterWriter, pages: list[tuple[RasterPage, list[Row]]],
          band: int = 32) -> bytes:
    out = [writer.start_job()]
    for page, rows in pages:
        out.append(writer.start_page(page))
        for start in range(0, len(rows), band):
            out.extend(writer.write_rows(rows[start : start + band]))
            assert len(writer._band) < writer.mode.band_rows  # memory: at most one band
        out.append(writer.end_page())
    out.append(writer.end_job())
    return b"".join(out)


def expected(rows: list[bytes], width: int, model: EscpModel, dpi_x: int,
             blank_top: int = 0) -> list[bytes]:
    """The source as the printer can print it: padding bits cleared, cut at the printable
    width, rows above an ESC/P 2 top margin blank."""
    printable = min(width, int(model.printable_width_in * dpi_x))
    size = (printable + 7) // 8
    mask = (0xFF00 >> (printable % 8 or 8)) & 0xFF
    out = []
    for number, row in enumerate(rows):
        row = row[:size].ljust(size, b"\0")
        row = row[:-1] + bytes([row[-1] & mask])
        out.append(bytes(size) if number < blank_top else row)
    return out


def random_rows(width: int, height: int, rng: random.Random) -> list[bytes]:
    """Blank stretches longer than a band, runs, noise, lone dots."""
    size = (width + 7) // 8
    rows: list[bytes] = []
    while len(rows) < height:
        kind = rng.random()
        if kind < 0.25:
            rows.extend([bytes(size)] * rng.randint(1, 60))
        elif kind < 0.5:
            rows.append(bytes(rng.choice((0, 0, 0xFF, 0x18, 0x01)) for _ in range(size)))
        elif kind < 0.7:
            row = bytearray(size)
            row[rng.randrange(size)] = 1 << rng.randrange(8)
            rows.append(bytes(row))
        else:
            rows.append(rng.randbytes(size))
    return rows[:height]


def round_trip(model: EscpModel, quality: int, sources: list[list[bytes]], width: int,
               top_margin_pt: float = 0.0, repeats: bool = False) -> EscpJob:
    mode = model.mode(quality)
    pages = []
    for rows in sources:
        page = page_for(model, quality, width, len(rows))
        packed = _runs(rows) if repeats else [(row, 1) for row in rows]
        pages.append((page, packed))
    writer = EscpRasterWriter(model, quality, top_margin_pt)
    job = decode(write(writer, pages), model, quality)
    assert len(job.pages) == len(sources)
    blank_top = writer._skip_rows
    for rows, decoded in zip(sources, job.pages, strict=True):
        printable = min(width, int(model.printable_width_in * mode.dpi_x))
        assert decoded.bitmap(printable, len(rows)) == expected(
            rows, width, model, mode.dpi_x, blank_top)
    return job


def _runs(rows: list[bytes]) -> list[Row]:
    packed: list[Row] = []
    for row in rows:
        if packed and packed[-1][0] == row:
            packed[-1] = (row, packed[-1][1] + 1)
        else:
            packed.append((row, 1))
    return packed


# -- building blocks ------------------------------------------------------------------------


def test_transposer_turns_rows_into_columns_top_dot_first() -> None:
    rng = random.Random(5)
    rows = [rng.randbytes(7) for _ in range(8)]
    columns = _Transposer(7).columns(rows)
    for column in range(56):
        want = 0
        for r in range(8):
            want |= (rows[r][column // 8] >> (7 - column % 8) & 1) << (7 - r)
        assert columns[column] == want, column


def _unrle(data: bytes) -> bytes:
    out, pos = bytearray(), 0
    while pos < len(data):
        counter = data[pos]
        assert counter != 128
        if counter < 128:
            out += data[pos + 1 : pos + 2 + counter]
            pos += 2 + counter
        else:
            out += data[pos + 1 : pos + 2] * (257 - counter)
            pos += 2
    return bytes(out)


def test_rle_is_epsons_run_length_encoding() -> None:
    # Epson: counter 0..127 -> counter+1 literal bytes; 129..255 -> next byte 257-counter times.
    assert escp2_rle(b"\0\0\0\0\0AB") == b"\xfc\x00\x01AB"
    assert escp2_rle(b"\xff" * 128) == b"\x81\xff"
    assert escp2_rle(b"\xff" * 129) == b"\x81\xff\x00\xff"
    assert escp2_rle(b"\xff" * 130) == b"\x81\xff\xff\xff"  # 128, then 2
    assert escp2_rle(b"AAB") == b"\x02AAB"  # a pair stays literal: no gain
    assert escp2_rle(b"") == b""
    literal = bytes(range(200))
    assert escp2_rle(literal) == b"\x7f" + literal[:128] + b"\x47" + literal[128:]
    rng = random.Random(1)
    for _ in range(200):
        data = b"".join(bytes([rng.choice(b"\0\x01\xff")]) * rng.choice((1, 2, 3, 127, 128, 129,
                                                                          300))
                        for _ in range(rng.randint(0, 12)))
        encoded = escp2_rle(data)
        assert _unrle(encoded) == data and 128 not in encoded[:1]


# -- exact bytes, written from the reference -------------------------------------------------


def test_24pin_tiny_page_bytes() -> None:
    model = MODELS["escp-24pin"]
    rows = [b"\x80\x00"] + [bytes(2)] * 22 + [b"\x00\x01"] + [bytes(2)] * 24
    page = page_for(model, 4, 16, 48, height_pt=72)  # a 1-inch page: 180/180"
    data = write(EscpRasterWriter(model, 4), [(page, [(r, 1) for r in rows])])
    columns = b"\x80\x00\x00" + bytes(3 * 14) + b"\x00\x00\x01"
    assert data == (
        ESC + b"@" + ESC + b"O" + ESC + b"U\x00"  # init, no perforation skip, bidirectional
        + ESC + b"3\x02" + ESC + b"C\x5a"  # 90 lines of 2/180": one inch
        + ESC + b"$\x00\x00" + ESC + b"*\x27\x10\x00" + columns  # 16 columns of 24 dots
        + b"\x0c" + ESC + b"@"
    )


def test_9pin_tiny_page_bytes_with_a_blank_gap() -> None:
    model = MODELS["escp-9pin"]
    rows = [bytes(1)] * 8 + [b"\x0f"] + [bytes(1)] * 6 + [b"\x01"] + [bytes(1)] * 4
    page = page_for(model, 4, 8, 20, height_pt=72)  # 216/216"
    data = write(EscpRasterWriter(model, 4), [(page, [(r, 1) for r in rows])])
    # Rows 8..15 print at 8/72" = 24/216"; columns 4..7 are inked: the head starts at
    # column 4 = 2/60" (ESC $ 2), 4 columns of 8 dots: row 8 on top, row 15 at the bottom.
    assert data == (
        ESC + b"@" + ESC + b"O" + ESC + b"U\x00"
        + ESC + b"3\x02" + ESC + b"C\x6c"  # 108 lines of 2/216": one inch
        + ESC + b"J\x18" + ESC + b"$\x02\x00" + ESC + b"*\x01\x04\x00"
        + b"\x80\x80\x80\x81"
        + b"\x0c" + ESC + b"@"
    )


def test_escp2_tiny_page_bytes() -> None:
    model = MODELS["escp2"]
    rows = [bytes(3)] * 2 + [b"\x00\x00\xff"] + [bytes(3)] * 3
    page = page_for(model, 3, 24, 6, height_pt=72)  # 180x180 dpi, one inch: 360/360"
    data = write(EscpRasterWriter(model, 3), [(page, [(r, 1) for r in rows])])
    assert data == (
        ESC + b"@" + ESC + b"(G\x01\x00\x01" + ESC + b"(U\x01\x00\x0a" + ESC + b"U\x00"
        + ESC + b"(C\x02\x00\x68\x01" + ESC + b"(c\x04\x00\x00\x00\x68\x01"
        + ESC + b"(v\x02\x00\x04\x00"  # 2 rows of 1/180" down
        + ESC + b"$\x20\x00"  # two blank bytes = 16 dots at 180 dpi = 32/360"
        # compressed, v = h = 20/3600", 24 rows, 8 dots: one row 0xFF then 23 blank ones
        + ESC + b".\x01\x14\x14\x18\x08\x00" + b"\x00\xff" + b"\x00\x00" * 23
        + b"\x0c" + ESC + b"@"
    )


# -- raster round trips ---------------------------------------------------------------------


@pytest.mark.parametrize(("name", "quality"), MODES)
@pytest.mark.parametrize("width", [1, 13, 64, 203])
def test_random_pages_round_trip(name: str, quality: int, width: int) -> None:
    model = MODELS[name]
    rng = random.Random(f"{name}{quality}{width}")
    sources = [random_rows(width, rng.randint(1, 130), rng) for _ in range(3)]
    round_trip(model, quality, sources, width)
    round_trip(model, quality, sources, width, repeats=True)


@pytest.mark.parametrize(("name", "quality"), MODES)
def test_structured_page_round_trips(name: str, quality: int) -> None:
    """Solid blocks (runs to compress, adjacent dots), a checkerboard, a frame, blank bands,
    and a last band cut short by the page's end."""
    model = MODELS[name]
    mode = model.mode(quality)
    width, height = 150, mode.band_rows * 5 + 7
    size = (width + 7) // 8
    rows = []
    for y in range(height):
        if y in (0, height - 1):
            row = b"\xff" * size
        elif y < mode.band_rows * 2:
            row = (b"\xaa" if y % 2 else b"\x55") * size
        elif y < mode.band_rows * 4:
            row = bytes(size)  # two blank bands
        else:
            row = b"\x80" + bytes(4) + b"\xff" * 6 + bytes(size - 12) + b"\x01"
        rows.append(row)
    job = round_trip(model, quality, [rows], width)
    assert job.resets == 2


@pytest.mark.parametrize(("name", "quality"), MODES)
def test_a_blank_page_is_a_form_feed(name: str, quality: int) -> None:
    model = MODELS[name]
    job = round_trip(model, quality, [[bytes(4)] * 100, [bytes(4)] * 3], 32)
    assert job.commands.count("FF") == 2
    assert "ESC *" not in job.commands and "ESC ." not in job.commands
    assert "ESC J" not in job.commands and "ESC ( v" not in job.commands


def test_escp2_rows_above_the_top_margin_are_dropped() -> None:
    model = MODELS["escp2"]
    rng = random.Random(3)
    rows = [rng.randbytes(10) for _ in range(60)]
    job = round_trip(model, 4, [rows], 80, top_margin_pt=8.0)  # 20 rows at 180 dpi
    assert job.state["ESC ( c"] == 40  # 40/360"


def test_wider_than_the_printer_is_cut() -> None:
    model = MODELS["escp-24pin"]
    width = 180 * 9  # nine inches on an eight-inch printer
    rows = [b"\xff" * (width // 8)] * 24
    job = round_trip(model, 4, [rows], width)
    assert max(column for _, column in job.pages[0].dots) == 180 * 8 - 1


def test_9pin_high_quality_interleaves_three_passes() -> None:
    model = MODELS["escp-9pin"]
    rows = [b"\xff"] * 24
    job = round_trip(model, 5, [rows], 8)
    assert job.commands.count("ESC *") == 3
    assert [value for command, value in job.values if command == "ESC J"] == [1, 1]
    assert job.state["ESC U"] == 1


def test_24pin_high_quality_never_fires_a_pin_twice_in_a_row() -> None:
    model = MODELS["escp-24pin"]
    rows = [b"\xff" * 8] * 24  # solid: needs both the even and the odd pass
    job = round_trip(model, 5, [rows], 64)
    assert job.commands.count("ESC *") == 2  # the reader checks the no-adjacent rule
    assert job.state["ESC *"] == 40


def test_long_blank_stretches_cost_nothing() -> None:
    model = MODELS["escp-24pin"]
    page = page_for(model, 4, 1440, 3960)  # 22 inches, the longest page ESC/P sets
    writer = EscpRasterWriter(model, 4)
    out = writer.start_job() + writer.start_page(page)
    out += b"".join(writer.write_rows([(bytes(180), 3959), (b"\x80" + bytes(179), 1)]))
    out += writer.end_page() + writer.end_job()
    assert len(out) < 200
    assert sum(n[0] for n in re.findall(rb"\x1bJ(.)", out, re.DOTALL)) == 3959
    job = decode(out, model, 4)
    assert job.pages[0].dots == {(3959, 0)}
    with pytest.raises(ConversionError, match="longer than ESC/P can set"):
        writer.start_page(page_for(model, 4, 8, 3961))


@pytest.mark.parametrize(("name", "quality"), MODES)
def test_page_length_is_the_sheet(name: str, quality: int) -> None:
    model = MODELS[name]
    mode = model.mode(quality)
    height = round(A4_PT[1] / 72 * mode.dpi_y)
    rows = [bytes(2)] * (height - 1) + [b"\x80\x00"]  # a dot on the last row
    page = page_for(model, quality, 16, height, height_pt=A4_PT[1])
    job = decode(write(EscpRasterWriter(model, quality), [(page, [(r, 1) for r in rows])]),
                 model, quality)
    assert len(job.pages) == 1  # the printer never went on to a page of its own
    length_in = float(job.pages[0].length)
    assert A4_PT[1] / 72 <= length_in < A4_PT[1] / 72 + 0.02


def test_a_page_at_another_resolution_is_refused() -> None:
    writer = EscpRasterWriter(MODELS["escp-24pin"], 4)
    with pytest.raises(ConversionError, match="180x180"):
        writer.start_page(RasterPage(8, 8, PixelFormat.BLACK_1, 300, 300))
    with pytest.raises(ConversionError, match="1-bit"):
        writer.start_page(RasterPage(8, 8, PixelFormat.SGRAY_8, 180, 180))
    with pytest.raises(ValueError, match="print-quality 6"):
        EscpRasterWriter(MODELS["escp-24pin"], 6)


def test_the_reader_rejects_what_it_does_not_know() -> None:
    with pytest.raises(AssertionError, match="unknown command"):
        decode_escp(ESC + b"@" + ESC + b"Z\x00", "24pin")
    with pytest.raises(AssertionError, match="control code"):
        decode_escp(b"\x07", "24pin")
    with pytest.raises(AssertionError, match="adjacent"):
        decode_escp(ESC + b"*\x28\x02\x00" + b"\x80\0\0\x80\0\0" + b"\x0c", "24pin", (360, 180))
    with pytest.raises(AssertionError, match="counter 128"):
        decode_escp(ESC + b"(G\x01\x00\x01" + ESC + b".\x01\x14\x14\x01\x08\x00\x80\x00",
                    "escp2")


# -- text -----------------------------------------------------------------------------------

# A small sheet for the shared layout: 20 columns of 7.2 points and 6 lines of 12 points between
# its 1/4" margins; 9 lines (ESC C) a page, 2 blank ones at the top, a left margin of 2 columns.
SMALL = MediaSize("custom_small_181x108pt", 6386, 3810)
SMALL_LAYOUT = EscpTextLayout(columns=20, lines=6, page_lines=9, left_columns=2, top_lines=2)


def text_converter(name: str, options: PrintOptions,
                   on_page: Callable[[], None]) -> tuple[TextFormatter, EscpTextLayout]:
    """The converter the driver's text plan runs, and the layout its writer prints at."""
    driver = get_driver(name)
    caps = driver.capabilities.with_changes(media=(*driver.capabilities.media, SMALL))
    plan = driver.plan(TEXT, caps)
    assert plan is not None
    [stage] = plan.stages(Context(driver, caps, options))
    assert isinstance(stage, ConverterStage)
    formatter = getattr(stage, "_make")(on_page)  # noqa: B009 - the stage makes it per run
    assert isinstance(formatter, TextFormatter)
    layout = formatter.layout
    return formatter, formatter_layout(MODELS[name], layout.columns, layout.lines, layout.left,
                                       layout.top, layout.page_height)


def run_text(data: bytes | list[bytes], name: str = "escp-24pin", quality: int = 4,
             media: str = SMALL.name, page_ranges: tuple[tuple[int, int], ...] = (),
             ) -> tuple[bytes, int, EscpTextLayout]:
    """The job's bytes, the pages reported, and the ESC/P layout of the shared formatter's."""
    sent: list[int] = []
    options = PrintOptions(print_quality=quality, media=media, page_ranges=page_ranges)
    converter, layout = text_converter(name, options, lambda: sent.append(1))
    chunks = data if isinstance(data, list) else [data]
    out = b"".join(piece for chunk in chunks for piece in converter.feed(chunk))
    return out + b"".join(converter.finish()), len(sent), layout


def text_pages(out: bytes, layout: EscpTextLayout, name: str = "escp-24pin") -> list[list[str]]:
    model = MODELS[name]
    job = decode_escp(out, model.kind, columns=model.text_columns)
    assert job.state["ESC C"] == layout.page_lines
    assert job.state.get("ESC l", 0) == layout.left_columns
    pages = []
    for page in job.pages:
        assert page.length == Fraction(layout.page_lines, 6)
        assert page.text[: layout.top_lines] == [""] * layout.top_lines
        pages.append(page.text[layout.top_lines :])
    return pages


def test_the_small_sheet_has_the_layout_the_tests_expect() -> None:
    _, _, layout = run_text(b"x")
    assert layout == SMALL_LAYOUT


def test_text_job_bytes() -> None:
    """A4 in the shared layout: 77 columns, 67 lines, ESC C 70, ESC l 2, 2 blank top lines."""
    out, sent, layout = run_text("héllo\tx\n".encode(), media="iso_a4_210x297mm")
    assert layout == EscpTextLayout(77, 67, 70, 2, 2)
    assert out == (
        ESC + b"@" + ESC + b"x\x01" + ESC + b"R\x00" + ESC + b"t\x01" + ESC + b"6"
        + ESC + b"P" + ESC + b"2" + ESC + b"O" + ESC + b"C\x46" + ESC + b"l\x02"
        + b"\r\n\r\n" + b"h\x82llo   x" + b"\r\x0c" + ESC + b"@"
    )
    assert sent == 1


def test_text_wraps_long_lines() -> None:
    out, sent, layout = run_text(b"x" * 45 + b"\n" + b"12345678901234567890\nend")
    assert text_pages(out, layout) == [
        ["x" * 20, "x" * 20, "x" * 5, "12345678901234567890", "end"]]
    assert sent == 1


def test_text_pages_by_length_and_form_feed() -> None:
    lines = b"".join(b"line %d\n" % n for n in range(8))
    out, sent, layout = run_text(b"\fa\fb\n\f" + lines + b"\f" + b"x\n" * 6 + b"\fz")
    assert text_pages(out, layout) == [
        [""],  # a form feed first: a blank page (as the reader sees it: one empty line)
        ["a"],
        ["b"],  # the line before the form feed is not followed by a blank one
        [f"line {n}" for n in range(6)],
        ["line 6", "line 7"],
        ["x"] * 6,  # a full page: the form feed after it adds no blank page
        ["z"],
    ]
    assert sent == 7
    job = decode_escp(out, "24pin")
    assert job.commands.count("FF") == 7 and "LF" in job.commands


def test_text_page_length_from_the_media() -> None:
    # Letter in the shared layout: 63 lines, ESC C 66; the lines nearly fill the 80-column
    # carriage, so the left margin is what is left of it.
    out, _, letter = run_text(b"".join(b"%d\n" % n for n in range(140)), "escp-9pin",
                              media="na_letter_8.5x11in")
    assert (letter.lines, letter.page_lines, letter.top_lines) == (63, 66, 2)
    assert letter.columns == 80 and letter.left_columns == 0
    pages = text_pages(out, letter, "escp-9pin")
    assert [len(p) for p in pages] == [63, 63, 14]  # full pages end without a stray line feed
    assert pages[1][0] == "63" and pages[2][-1] == "139"


def test_a_layout_from_another_paginator_fits_the_carriage() -> None:
    model = MODELS["escp-24pin"]
    # Letter with 1/4" margins: 80 columns fill the carriage, so no left margin is left.
    assert formatter_layout(model, 80, 63, 18, 18, 792) == EscpTextLayout(80, 63, 66, 0, 2)
    assert formatter_layout(model, 77, 67, 18, 18, 841.89) == EscpTextLayout(77, 67, 70, 2, 2)
    assert formatter_layout(model, 70, 66, 0, 30, 792).top_lines == 0
    with pytest.raises(ConversionError, match="at most 80 columns"):
        formatter_layout(model, 109, 43, 18, 18, 595)  # landscape A4


def test_text_outside_pc437_prints_safely() -> None:
    text = "Grüße \u2013 \u201ezitat\u201c \u2022 ñ 日本 \x1b@ \x07bell\x08\u009b € e\u0301\n"
    out, _, layout = run_text(text.encode())
    body = out[out.index(b"\r\n") : -2]  # the lines, without the header and the ESC @ after
    assert not re.search(rb"[\x00-\x09\x0b\x0e-\x1f\x7f]", body)  # no command sneaks in
    assert text_pages(out, layout) == [["Grüße - \"zitat\" ∙ ñ", "?? @ bell ? é"]]


def test_text_streams_in_any_chunks() -> None:
    data = "a\r\nbé\tc\r\r\nd\fe\ré_\n".encode() * 20
    whole, _, layout = run_text(data)
    pieces, _, _ = run_text([data[i : i + 1] for i in range(len(data))])
    assert pieces == whole
    pages = text_pages(whole, layout)
    assert pages[:2] == [["a", "bé      c", "d"], ["é_", "a", "bé      c", "d"]]


def test_text_overstrike_and_tabs() -> None:
    out, _, layout = run_text(b"abc  def\r___\nx\ty\n")
    assert text_pages(out, layout) == [["___  def", "x       y"]]


def test_corpus_text_file_prints_line_for_line() -> None:
    """The GPL as the printer reads it back: every line wrapped at the width, pages full."""
    source = CORPUS / "gpl-3.txt"
    if not source.exists():
        pytest.skip("the corpus is not here")
    data = source.read_bytes()
    chunks = [data[i : i + 4096] for i in range(0, len(data), 4096)]
    out, sent, layout = run_text(chunks, media="iso_a4_210x297mm")
    pages = text_pages(out, layout)
    want = []
    for line in data.decode().replace("\f", "").split("\n")[:-1]:
        line = line.expandtabs(8).rstrip()
        want += [line[i : i + layout.columns].rstrip()
                 for i in range(0, len(line), layout.columns)]
        want += [] if line else [""]
    assert "\f" not in data.decode() and sent == len(pages) > 10
    assert all(len(page) == layout.lines for page in pages[:-1])
    got = [line for page in pages for line in page]
    assert got == want[: len(got)] and all(not line for line in want[len(got) :])


def test_text_page_ranges_and_empty_documents() -> None:
    out, sent, layout = run_text(b"one\ftwo\fthree", page_ranges=((1, 1), (3, 3)))
    assert text_pages(out, layout) == [["one"], ["three"]] and sent == 2
    with pytest.raises(ConversionError, match="nothing to print"):
        run_text(b" \n\t\n")


# -- Ghostscript ----------------------------------------------------------------------------


def _read_pbm(data: bytes) -> tuple[int, int, list[bytes]]:
    match = re.match(rb"P4\s+(?:#[^\n]*\n\s*)*(\d+)\s+(\d+)\s", data)
    assert match is not None, data[:40]
    width, height = int(match[1]), int(match[2])
    size = (width + 7) // 8
    body = data[match.end() : match.end() + size * height]
    assert len(body) == size * height
    return width, height, [body[i * size : (i + 1) * size] for i in range(height)]


@pytest.mark.skipif(shutil.which("gs") is None, reason="Ghostscript is not installed")
@pytest.mark.parametrize(("document", "name", "quality"), [
    ("testpage-1p-vector.pdf", "escp-24pin", 4), ("testpage-1p-vector.pdf", "escp-24pin", 5),
    ("testpage-1p-vector.pdf", "escp-9pin", 5), ("testpage-1p-vector.pdf", "escp-9pin", 3),
    ("testpage-1p-vector.pdf", "escp2", 4), ("bash-87p-text.pdf", "escp-24pin", 3),
    ("bash-87p-text.pdf", "escp2", 5)])
def test_corpus_pdf_matches_ghostscript(document: str, name: str, quality: int) -> None:
    model = MODELS[name]
    mode = model.mode(quality)
    pdf = CORPUS / document
    if not pdf.exists():
        pytest.skip("the corpus is not here")
    result = subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", "-sDEVICE=pbmraw",
         f"-r{mode.gs_resolution}", "-dFirstPage=1", "-dLastPage=1", "-sOutputFile=-", str(pdf)],
        capture_output=True, timeout=120, check=True)
    width, height, rows = _read_pbm(result.stdout)
    assert sum(map(any, rows)) > height // 10  # a page with something on it
    page = RasterPage(width, height, PixelFormat.BLACK_1, mode.dpi_x, mode.dpi_y,
                      page_height_pt=height * 72 / mode.dpi_y)
    writer = EscpRasterWriter(model, quality, top_margin_pt=12.0)
    job = decode(write(writer, [(page, _runs(rows))]), model, quality)
    printable = min(width, int(model.printable_width_in * mode.dpi_x))
    assert len(job.pages) == 1
    decoded = job.pages[0].bitmap(printable, height)
    assert decoded == expected(rows, width, model, mode.dpi_x, writer._skip_rows)


# -- the drivers ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(MODELS))
def test_each_model_is_a_registered_driver(name: str) -> None:
    driver = get_driver(name)
    caps = driver.capabilities
    assert isinstance(driver, Escp) and driver.model is MODELS[name]
    assert driver.accepted_formats(caps) == ("application/octet-stream", *DOCUMENT_FORMATS)
    assert not caps.color and not caps.duplex and caps.print_qualities == (3, 4, 5)
    assert {m.name for m in caps.media} == {"iso_a4_210x297mm", "na_letter_8.5x11in",
                                             "na_legal_8.5x14in"}
    assert driver.pjl_language is None and not driver.passes_through and not driver.collates
    for quality in (3, 4, 5):
        mode = MODELS[name].mode(quality)
        options = PrintOptions(print_quality=quality)
        assert driver.resolution(options, caps) == (mode.dpi_x, mode.dpi_y)
        pdf = driver.plan(PDF, caps)
        assert pdf is not None
        ghostscript, _ = pdf.stages(Context(driver, caps, options, Path("in.pdf")))
        job = getattr(ghostscript, "job")  # noqa: B009 - the GhostscriptStage
        assert f"-r{mode.dpi_x}x{mode.dpi_y}" in job.arguments("in.pdf")


@pytest.mark.parametrize(("fmt", "options", "expected"), [
    (TEXT, PrintOptions(orientation=LANDSCAPE), ["orientation-requested"]),
    (TEXT, PrintOptions(orientation=REVERSE_PORTRAIT), ["orientation-requested"]),
    (TEXT, PrintOptions(orientation=PORTRAIT, media="na_legal_8.5x14in", page_ranges=((2, 3),)),
     []),
    (PDF, PrintOptions(orientation=LANDSCAPE, copies=3, collate=False), []),
    (PDF, PrintOptions(color_mode="color", sides="two-sided-long-edge"),
     ["sides", "print-color-mode"]),
    ("image/urf", PrintOptions(orientation=LANDSCAPE), ["orientation-requested"]),
])
def test_what_an_escp_printer_cannot_do_is_named(fmt: str, options: PrintOptions,
                                                 expected: list[str]) -> None:
    driver = get_driver("escp-24pin")
    assert driver.unsupported_options(fmt, driver.capabilities, options) == expected


def test_text_on_a_sheet_wider_than_the_carriage_is_refused() -> None:
    driver = get_driver("escp-9pin")
    caps = driver.capabilities.with_changes(
        media=(*driver.capabilities.media, MEDIA_SIZES["na_ledger_11x17in"]))
    ledger = PrintOptions(media="na_ledger_11x17in")
    assert driver.unsupported_options(TEXT, caps, ledger) == ["media"]
    assert driver.unsupported_options(PDF, caps, ledger) == []  # cut at the carriage


def test_copies_are_pages_sent_again_or_the_document_again() -> None:
    driver = get_driver("escp2")
    caps = driver.capabilities
    chosen = driver.plan(PDF, caps)
    assert chosen is not None
    collated = PrintOptions(copies=3, collate=True)
    assert driver.copy_plan(chosen, PDF, caps, collated).passes == 3
    uncollated = PrintOptions(copies=3, collate=False)
    assert driver.copy_plan(chosen, PDF, caps, uncollated) == CopyPlan(1, uncollated, 3)


def raster_job(sink: EscpRaster, page: RasterPage, rows: list[Row]) -> bytes:
    out = [sink.start_job(), sink.start_page(page)]
    for start in range(0, len(rows), 7):
        out.extend(sink.write_rows(rows[start : start + 7]))
    return b"".join([*out, sink.end_page(), sink.end_job()])


def test_the_raster_sink_repeats_each_page_for_copies() -> None:
    model = MODELS["escp-24pin"]
    rng = random.Random(9)
    rows = [(row, 1) for row in random_rows(40, 50, rng)]
    page = page_for(model, 4, 40, 50, height_pt=72)
    caps = get_driver("escp-24pin").capabilities
    once = decode(raster_job(EscpRaster(model, PrintOptions(), caps), page, rows), model, 4)
    thrice = decode(raster_job(EscpRaster(model, PrintOptions(copies=3), caps), page, rows),
                    model, 4)
    assert len(once.pages) == 1 and len(thrice.pages) == 3
    assert all(p.dots == once.pages[0].dots for p in thrice.pages) and once.pages[0].dots


def test_a_page_rendered_on_whole_points_is_given_the_sheets_length() -> None:
    """Ghostscript renders A4 as 841 points, PWG says 842: on continuous paper a page length
    off by a point would drift a third of a millimetre a page."""
    model = MODELS["escp-9pin"]
    caps = get_driver("escp-9pin").capabilities
    a4 = MEDIA_SIZES["iso_a4_210x297mm"].height_points / 72
    for height_pt in (841, 842):
        page = RasterPage(16, height_pt, PixelFormat.BLACK_1, 120, 72,  # 72 rows an inch
                          page_width_pt=595, page_height_pt=height_pt)
        job = decode(raster_job(EscpRaster(model, PrintOptions(), caps), page, []), model, 4)
        assert a4 <= job.pages[0].length < a4 + 0.01
    odd = RasterPage(16, 700, PixelFormat.BLACK_1, 120, 72, page_width_pt=595,
                     page_height_pt=700)
    job = decode(raster_job(EscpRaster(model, PrintOptions(), caps), odd, []), model, 4)
    assert 700 / 72 <= job.pages[0].length < 700 / 72 + 0.01  # no sheet near: its own size


def test_the_text_writer_repeats_each_page_for_copies() -> None:
    model = MODELS["escp-24pin"]
    layout = TextLayout(77, 67, False, 18, 18, 595.28, 841.89)
    text = EscpText(model, PrintOptions(copies=2), layout)
    data = text.start_job() + text.page(["one"]) + text.page(["two"]) + text.end_job()
    pages = decode_escp(data, "24pin").pages
    assert [page.text[2:] for page in pages] == [["one"], ["one"], ["two"], ["two"]]


def _page_pixels(rows: list[bytes], width: int) -> set[tuple[int, int]]:
    return {(r, c) for r, row in enumerate(rows) for c in range(width)
            if row[c >> 3] & 0x80 >> (c & 7)}


def resample(rows: list[bytes], width: int, source_dpi: tuple[int, int],
             dpi: tuple[int, int], band: int) -> tuple[RasterPage, list[bytes]]:
    page = RasterPage(width, len(rows), PixelFormat.BLACK_1, *source_dpi)
    resampler = _Resampler(page, *dpi)
    out: list[Row] = []
    packed = _runs(rows)
    for start in range(0, len(packed), band):
        out += resampler.rows(packed[start : start + band])
    out += resampler.finish()
    return resampler.page, [line for line, count in out for _ in range(count)]


@pytest.mark.parametrize("band", [1, 5, 64])
def test_halving_the_resolution_keeps_every_dot(band: int) -> None:
    """360 -> 180 dpi both ways: an output dot is black where any of its 2x2 pixels is."""
    rng = random.Random(band)
    width, height = 38, 61
    rows = random_rows(width, height, rng)
    page, out = resample(rows, width, (360, 360), (180, 180), band)
    assert (page.width, page.height, page.dpi_x, page.dpi_y) == (19, 31, 180, 180)
    assert page.size_points == pytest.approx((width / 5, height / 5))
    source = _page_pixels(rows, width)
    want = {(r // 2, c // 2) for r, c in source}
    assert len(out) == 31 and _page_pixels(out, 19) == want


@pytest.mark.parametrize(("source_dpi", "dpi"), [
    ((180, 180), (120, 180)), ((72, 72), (120, 216)), ((180, 180), (360, 180)),
    ((144, 144), (60, 72)), ((360, 360), (180, 180))])
def test_resampling_loses_no_ink_and_invents_none(source_dpi: tuple[int, int],
                                                  dpi: tuple[int, int]) -> None:
    rng = random.Random(f"{source_dpi}{dpi}")
    width, height = 91, 75
    rows = random_rows(width, height, rng)
    page, out = resample(rows, width, source_dpi, dpi, 8)
    sx, sy = Fraction(dpi[0], source_dpi[0]), Fraction(dpi[1], source_dpi[1])
    assert page.height == len(out) == math.ceil(height * sy)
    assert page.width == math.ceil(width * sx)
    source, dots = _page_pixels(rows, width), _page_pixels(out, page.width)

    def near(r: int, c: int, points: set[tuple[int, int]], ry: Fraction, rx: Fraction) -> bool:
        rows_ = range(math.floor(r * ry) - 1, math.ceil((r + 1) * ry) + 1)
        columns = range(math.floor(c * rx) - 1, math.ceil((c + 1) * rx) + 1)
        return any((y, x) in points for y in rows_ for x in columns)

    assert all(near(r, c, dots, sy, sx) for r, c in source)  # none lost
    assert all(near(r, c, source, 1 / sy, 1 / sx) for r, c in dots)  # none invented
    # Whole rows map exactly: a row is inked where a source row it covers is.
    inked = {r for r, _ in source}
    for r in range(page.height):
        first = r * sy.denominator // sy.numerator
        covered = range(first, max(first + 1, (r + 1) * sy.denominator // sy.numerator))
        assert any(r2 == r for r2, _ in dots) == any(y in inked for y in covered), r
