"""PWG raster and URF streaming codecs: round trips, chunking, limits and lying documents."""

from __future__ import annotations

import contextlib
import random
import struct
import subprocess
from collections.abc import Iterable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import ConversionError
from drivers.filters.linecodec import decode_line, encode_packets
from drivers.filters.packet_reader import PacketRasterReader
from drivers.filters.pwg_raster import PwgRasterReader, PwgRasterWriter, page_header
from drivers.filters.urf import UrfReader, UrfWriter
from drivers.model.raster import (
    Band,
    PageEnd,
    PageStart,
    PixelFormat,
    RasterLimits,
    RasterPage,
    expand,
)

CORPUS = Path(__file__).resolve().parents[2] / ".." / "shared" / "corpus"

Pages = list[tuple[RasterPage, list[bytes]]]


def sample_lines(page: RasterPage, seed: int) -> list[bytes]:
    """Lines with white stretches, runs, noise and repeats, as real pages have."""
    rng = random.Random(seed)
    size, white = page.bytes_per_line, page.white_line
    lines: list[bytes] = []
    while len(lines) < page.height:
        kind = rng.random()
        if kind < 0.3:
            line = white
        elif kind < 0.6:
            line = bytes(rng.choice((0, 0x55, 0xFF)) for _ in range(size))
        else:
            line = bytes(rng.getrandbits(8) for _ in range(size))
        lines.extend([line] * rng.randint(1, 4))
    return lines[: page.height]


def make_page(width: int, height: int, pixels: PixelFormat, number: int = 1) -> RasterPage:
    return RasterPage(width=width, height=height, pixels=pixels, dpi_x=300, dpi_y=300,
                      number=number)


def encode_pwg(pages: Pages) -> bytes:
    writer = PwgRasterWriter()
    out = writer.start()
    for page, lines in pages:
        out += writer.page(page) + writer.rows((line, 1) for line in lines)
    return out


def encode_urf(pages: Pages) -> bytes:
    writer = UrfWriter()
    out = writer.start(len(pages))
    for page, lines in pages:
        out += writer.page(page) + writer.rows((line, 1) for line in lines)
    return out


def decode(reader: PacketRasterReader, data: bytes, chunk: int = 65536) -> Pages:
    pages: Pages = []
    lines: list[bytes] = []

    def take(events: Iterable[object]) -> None:
        for event in events:
            if isinstance(event, PageStart):
                lines.clear()
            elif isinstance(event, Band):
                assert len(event.rows) <= reader.limits.band_rows
                lines.extend(expand(event.rows))
            elif isinstance(event, PageEnd):
                pages.append((event.page, list(lines)))

    for start in range(0, len(data), chunk):
        reader.feed(data[start : start + chunk])
        take(reader.events())
    reader.end_of_input()
    take(reader.events())
    return pages


FORMATS = [PixelFormat.BLACK_1, PixelFormat.SGRAY_8, PixelFormat.SRGB_8, PixelFormat.CMYK_8]


@pytest.mark.parametrize("pixels", FORMATS)
def test_pwg_round_trip_every_format(pixels: PixelFormat) -> None:
    pages = [(make_page(37, 25, pixels, n), sample_lines(make_page(37, 25, pixels), n))
             for n in (1, 2)]
    decoded = decode(PwgRasterReader(), encode_pwg(pages))
    assert [lines for _, lines in decoded] == [lines for _, lines in pages]
    assert [(p.width, p.height, p.pixels, p.number) for p, _ in decoded] == [
        (37, 25, pixels, 1), (37, 25, pixels, 2)]


@pytest.mark.parametrize("pixels", FORMATS[1:])
def test_urf_round_trip(pixels: PixelFormat) -> None:
    page = make_page(50, 30, pixels)
    lines = sample_lines(page, 7)
    decoded = decode(UrfReader(), encode_urf([(page, lines)]))
    assert decoded[0][1] == lines
    assert decoded[0][0].dpi_x == 300


@settings(max_examples=40, deadline=None)
@given(
    width=st.integers(1, 70), height=st.integers(1, 12), seed=st.integers(0, 1000),
    pixels=st.sampled_from(FORMATS), chunk=st.integers(1, 97),
)
def test_pwg_decoding_does_not_depend_on_chunking(
    width: int, height: int, seed: int, pixels: PixelFormat, chunk: int
) -> None:
    page = make_page(width, height, pixels)
    lines = sample_lines(page, seed)
    data = encode_pwg([(page, lines)])
    assert decode(PwgRasterReader(), data, chunk)[0][1] == lines


@settings(max_examples=60, deadline=None)
@given(garbage=st.binary(max_size=300), chunk=st.integers(1, 64))
def test_arbitrary_bytes_after_a_header_only_raise_conversion_error(
    garbage: bytes, chunk: int
) -> None:
    page = make_page(9, 4, PixelFormat.SGRAY_8)
    data = b"RaS2" + page_header(page) + garbage
    with contextlib.suppress(ConversionError):
        decode(PwgRasterReader(), data, chunk)


@settings(max_examples=60, deadline=None)
@given(garbage=st.binary(max_size=200))
def test_arbitrary_urf_bytes_only_raise_conversion_error(garbage: bytes) -> None:
    with contextlib.suppress(ConversionError):
        decode(UrfReader(), b"UNIRAST\0" + garbage, 7)


def test_packets_encode_runs_literals_and_single_pixels() -> None:
    line = b"\x05" * 200 + b"\x01\x02\x03" + b"\x09"
    packets = encode_packets(line, 1)
    assert packets[:2] == b"\x7f\x05"  # 128 repeats, then 72
    assert decode_line(packets, 0, len(line), 1, 0xFF) == (line, len(packets))
    rgb = b"\x01\x02\x03" * 5 + b"\x09\x09\x09" + b"\x01\x02\x04"
    assert decode_line(encode_packets(rgb, 3), 0, len(rgb), 3, 0xFF)[0] == rgb


def test_urf_fill_packet_whitens_the_rest_of_the_line() -> None:
    page = make_page(6, 1, PixelFormat.SGRAY_8)
    body = struct.pack(">BBBBB", 0, 0x01, 0x10, 0x80, 0)  # repeat, 2 px of 0x10, fill
    data = UrfWriter().start(1) + UrfWriter().page(page) + body[:4]
    assert decode(UrfReader(), data)[0][1] == [b"\x10\x10" + b"\xff" * 4]


def _pwg_with_header(**fields: int) -> bytes:
    header = bytearray(page_header(make_page(8, 2, PixelFormat.SGRAY_8)))
    offsets = {"width": 372, "height": 376, "bytes_per_line": 392, "dpi": 276}
    for name, value in fields.items():
        struct.pack_into(">I", header, offsets[name], value)
    return b"RaS2" + bytes(header) + b"\x01\x07\x00"


@pytest.mark.parametrize("fields", [
    {"width": 0xFFFFFFF0, "bytes_per_line": 0xFFFFFFF0},
    {"height": 0xFFFFFFFF},
    {"height": 0},
    {"dpi": 0},
    {"bytes_per_line": 9},
])
def test_absurd_headers_are_refused(fields: dict[str, int]) -> None:
    with pytest.raises(ConversionError):
        decode(PwgRasterReader(), _pwg_with_header(**fields))


def test_urf_absurd_size_is_refused() -> None:
    header = bytes([8, 0, 1, 4]) + bytes(8) + struct.pack(">III", 1 << 30, 1 << 30, 300)
    with pytest.raises(ConversionError, match="absurd"):
        decode(UrfReader(), b"UNIRAST\0\0\0\0\1" + header + bytes(8))


@pytest.mark.parametrize("body, problem", [
    (b"\x00\x90" + b"\x00" * 111, "line lengths"),  # a literal of 111 pixels in a line of 8
    (b"\x00\x10\x07", "line lengths"),  # a run of 17 pixels in a line of 8
    (b"\x05\x07\x00", "line repeat"),  # 6 lines in a page of 2
    (b"\x00\x07\x00", "truncated"),  # one line of two
    (b"\x00\xfa\x01\x02", "truncated"),  # a literal cut short
])
def test_lying_lengths_and_truncation_raise(body: bytes, problem: str) -> None:
    data = b"RaS2" + page_header(make_page(8, 2, PixelFormat.SGRAY_8)) + body
    with pytest.raises(ConversionError, match=problem):
        decode(PwgRasterReader(), data, 3)


def test_urf_lying_length_raises() -> None:
    page = make_page(4, 1, PixelFormat.SGRAY_8)
    data = UrfWriter().start(1) + UrfWriter().page(page) + b"\x00\xf0" + bytes(17)
    with pytest.raises(ConversionError, match="URF page 1"):
        decode(UrfReader(), data)


def test_not_a_raster_and_no_pages() -> None:
    with pytest.raises(ConversionError, match="RaS2"):
        decode(PwgRasterReader(), b"%PDF-1.4 not raster")
    with pytest.raises(ConversionError, match="no pages"):
        decode(PwgRasterReader(), b"RaS2")
    with pytest.raises(ConversionError, match="UNIRAST"):
        decode(UrfReader(), b"RaS2" + bytes(40))


def test_memory_stays_bounded_for_a_huge_highly_compressed_page() -> None:
    """100 000 white lines of 40 000 bytes (4 GB decoded) in a few kB: the reader keeps one
    line per repeat record and a chunk of input, whatever it expands to."""
    limits = RasterLimits()
    page = make_page(40_000, 100_000, PixelFormat.SGRAY_8)
    one = encode_packets(b"\xff" * 40_000, 1)
    body = (b"\xff" + one) * (100_000 // 256) + bytes([100_000 % 256 - 1]) + one
    data = b"RaS2" + page_header(page) + body
    reader = PwgRasterReader(limits)
    rows = 0

    def drain() -> int:
        rows = 0
        for event in reader.events():
            if isinstance(event, Band):
                assert len(event.rows) <= limits.band_rows
                assert len({id(line) for line, _ in event.rows}) <= limits.band_rows
                rows += sum(count for _, count in event.rows)
        return rows

    for start in range(0, len(data), 4096):
        reader.feed(data[start : start + 4096])
        rows += drain()
        assert reader.buffered <= 4096 + 2 * 40_000 + 200
    reader.end_of_input()
    assert rows + drain() == 100_000


def test_sixteen_bit_and_black_8_are_normalised() -> None:
    header = bytearray(page_header(make_page(2, 1, PixelFormat.SGRAY_8)))
    for offset, value in ((384, 16), (388, 16), (392, 4)):
        struct.pack_into(">I", header, offset, value)
    data = b"RaS2" + bytes(header) + b"\x00\xff\x12\x34\xab\xcd"  # literal of 2 pixels
    assert decode(PwgRasterReader(), data)[0][1] == [b"\x12\xab"]
    header = bytearray(page_header(make_page(2, 1, PixelFormat.SGRAY_8)))
    struct.pack_into(">I", header, 400, 3)  # Black: 255 = black
    data = b"RaS2" + bytes(header) + b"\x00\xff\x00\xff"
    page, lines = decode(PwgRasterReader(), data)[0]
    assert page.pixels is PixelFormat.SGRAY_8 and lines == [b"\xff\x00"]


def _ghostscript(device: str, *args: str, source: str = "testpage-1p-vector.pdf") -> bytes:
    return subprocess.run(
        ["gs", "-q", "-dSAFER", "-dBATCH", "-dNOPAUSE", f"-sDEVICE={device}", "-r50",
         "-sOutputFile=-", *args, str(CORPUS / source)],
        check=True, capture_output=True, timeout=60,
    ).stdout


@pytest.mark.parametrize("space, bits, pixels", [
    (18, 8, PixelFormat.SGRAY_8), (19, 8, PixelFormat.SRGB_8), (3, 1, PixelFormat.BLACK_1),
    (6, 8, PixelFormat.CMYK_8),
])
def test_decodes_ghostscript_pwg(space: int, bits: int, pixels: PixelFormat) -> None:
    data = _ghostscript("pwgraster", f"-dcupsColorSpace={space}", f"-dcupsBitsPerColor={bits}")
    ((page, lines),) = decode(PwgRasterReader(), data, 1000)
    assert page.pixels is pixels and page.media_name == "iso_a4_210x297mm"
    assert (page.width, page.height, len(lines)) == (413, 585, 585)
    assert any(line != page.white_line for line in lines)


@pytest.mark.parametrize("args, pixels", [
    ((), PixelFormat.BLACK_1),
    (("-dcupsColorSpace=18", "-dcupsBitsPerColor=8"), PixelFormat.SGRAY_8),
    (("-dcupsColorSpace=19", "-dcupsBitsPerColor=8"), PixelFormat.SRGB_8),
])
def test_decodes_ghostscript_urf(args: tuple[str, ...], pixels: PixelFormat) -> None:
    pages = decode(UrfReader(), _ghostscript("urf", *args, source="groff-pic-39p.ps"))
    assert len(pages) == 39
    assert all(p.pixels is pixels and len(lines) == p.height for p, lines in pages)
