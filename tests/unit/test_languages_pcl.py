"""PCL 5 writer, proven by the test-side PCL decoder of tests/support/pcl_decoder.py."""

from __future__ import annotations

import random

import pytest

from drivers.errors import ConversionError
from drivers.languages.pcl import PclRasterWriter, PclTextWriter, _delta_row
from drivers.model.capabilities import Capabilities, PrintOptions
from drivers.model.packbits import packbits, packbits_bilevel, unpackbits
from drivers.model.raster import PixelFormat, RasterPage, Row
from drivers.registry import get_driver
from tests.support.pcl_decoder import decode_pcl, delta_decode


def bilevel_rows(width: int, height: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    size = (width + 7) // 8
    rows: list[bytes] = []
    while len(rows) < height:
        kind = rng.random()
        if kind < 0.3:
            row = bytes(size)
        elif kind < 0.6:
            row = bytes(rng.choice((0, 0, 0xFF, 0x18)) for _ in range(size))
        else:
            row = bytes(rng.getrandbits(8) for _ in range(size))
        rows.extend([row] * rng.randint(1, 3))
    return rows[:height]


def write_pages(writer: PclRasterWriter, pages: list[tuple[RasterPage, list[Row]]]) -> bytes:
    out = writer.start_job()
    for page, rows in pages:
        out += writer.start_page(page) + b"".join(writer.write_rows(rows)) + writer.end_page()
    return out + writer.end_job()


def expected_rows(rows: list[bytes], crop: int) -> list[bytes]:
    return [row[crop:] for row in rows]


@pytest.mark.parametrize("compression", [2, 3])
@pytest.mark.parametrize("dpi, media, crop", [
    (300, "iso_a4_210x297mm", 9), (600, "na_letter_8.5x11in", 19), (150, "iso_a5_148x210mm", 4)])
def test_raster_round_trips_through_the_decoder(
    compression: int, dpi: int, media: str, crop: int
) -> None:
    width = 640
    pages = []
    for number in (1, 2):
        rows = bilevel_rows(width, 90, number)
        page = RasterPage(width, 90, PixelFormat.BLACK_1, dpi, dpi, number, media_name=media)
        pages.append((page, rows))
    writer = PclRasterWriter(PrintOptions(), Capabilities(), compression)
    job = decode_pcl(write_pages(writer, [(p, [(r, 1) for r in rows]) for p, rows in pages]))
    assert len(job.pages) == 2 and job.resets == 2
    for (_, rows), decoded in zip(pages, job.pages, strict=True):
        assert decoded.resolution == dpi and decoded.width == width - crop * 8
        wanted = expected_rows(rows, crop)
        last_ink = max(i for i, row in enumerate(wanted) if any(row))
        assert decoded.rows[: last_ink + 1] == wanted[: last_ink + 1]
        assert not any(any(row) for row in decoded.rows[last_ink + 1 :])
    assert job.commands.count(b"&l26A" if media.startswith("iso_a4") else b"&l2A") <= 1


def test_repeated_rows_are_encoded_once_and_expand() -> None:
    row = bytes([0xF0]) * 40
    writer = PclRasterWriter(PrintOptions(), Capabilities(), 3)
    page = RasterPage(320, 300, PixelFormat.BLACK_1, 300, 300)
    data = write_pages(writer, [(page, [(row, 300)])])
    assert len(data) < 200 + 5 * 300  # one row, then 5-byte "repeat the seed" rows
    assert decode_pcl(data).pages[0].rows == [row[9:]] * 300


def test_job_settings_for_copies_duplex_and_page_size_changes() -> None:
    caps = Capabilities(duplex=True)
    options = PrintOptions(copies=3, sides="two-sided-short-edge", media_source="manual")
    writer = PclRasterWriter(options, caps)
    a4 = RasterPage(80, 2, PixelFormat.BLACK_1, 300, 300, media_name="iso_a4_210x297mm")
    letter = a4.with_changes(media_name="na_letter_8.5x11in")
    rows: list[Row] = [(b"\xff" * 10, 2)]
    job = decode_pcl(write_pages(writer, [(a4, rows), (a4, rows), (letter, rows)]))
    assert job.commands[:5] == [b"E", b"&l3X", b"&l2S", b"&l2H", b"&l26A"]
    assert job.commands.count(b"&l26A") == 1 and job.commands.count(b"&l2A") == 1
    assert len(job.pages) == 3


def test_resolution_pcl_cannot_print_is_refused() -> None:
    writer = PclRasterWriter(PrintOptions(), Capabilities())
    with pytest.raises(ConversionError, match="dpi"):
        writer.start_page(RasterPage(80, 2, PixelFormat.BLACK_1, 360, 360))


def test_delta_row_long_offsets() -> None:
    seed = bytes(600)
    row = bytearray(seed)
    row[3] = 1
    row[40] = 2  # offset 36 from the previous change: one extension byte
    row[400:410] = b"\x07" * 10  # offset 359: 31 + 255 + 73
    encoded = _delta_row(bytes(row), seed)
    assert delta_decode(encoded, seed, 600) == bytes(row)
    assert _delta_row(bytes(row), bytes(row)) == b""


def test_text_writer_pages_and_settings() -> None:
    writer = PclTextWriter(PrintOptions(), get_driver("pcl5").capabilities, landscape=True)
    data = writer.start_job(2, 3) + writer.page(["hello", "wörld"]) + writer.page([]) + (
        writer.end_job())
    job = decode_pcl(data)
    assert len(job.pages) == 2
    assert job.pages[0].text == b"hello\r\nw\xf6rld\r\n"
    assert {b"&l1O", b"&l3E", b"&a2L", b"(0N", b"&l26A"} <= set(job.commands)


def test_packbits_round_trips() -> None:
    rng = random.Random(3)
    samples = [b"", b"\0", b"\0\0", b"\0\0\0", b"\xff" * 300, b"\x55" * 129, bytes(range(256))]
    samples += [bytes(rng.choice(b"\0\0\0\xff\xff\x01\x55") for _ in range(rng.randint(0, 700)))
                for _ in range(300)]
    for data in samples:
        assert unpackbits(packbits(data)) == data
        assert unpackbits(packbits_bilevel(data)) == data
    assert packbits(b"\x55" * 10) == b"\xf7\x55"
    assert packbits_bilevel(b"ab" + bytes(200)) == b"\x01ab\x81\x00\xb9\x00"
