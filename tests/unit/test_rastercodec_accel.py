"""The C raster codec against its pure-Python references: same bytes, same exceptions."""

from __future__ import annotations

import os
import random
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drivers.errors import ConversionError
from drivers.filters import convert, packet_reader
from drivers.filters.convert import _THRESHOLD_MATRIX, Ditherer
from drivers.filters.linecodec import LineOverflow, decode_line_py, encode_packets
from drivers.filters.pwg_raster import PwgRasterReader, PwgRasterWriter
from drivers.filters.urf import UrfReader, UrfWriter
from drivers.languages import pcl
from drivers.languages.pcl import _delta_row_py, _pcl_band_py
from drivers.model import accel
from drivers.model.packbits import packbits_bilevel_py, packbits_py, unpackbits
from drivers.model.raster import PixelFormat, RasterEvent, RasterPage, Row

ROOT = Path(__file__).resolve().parents[2]
EXTENSION = accel.load_extension()
needs_extension = pytest.mark.skipif(
    EXTENSION is None, reason="drivers.filters._rastercodec is not built (no C compiler?)"
)
UNITS = [1, 2, 3, 4, 6, 8]


def codec() -> ModuleType:
    assert EXTENSION is not None
    return EXTENSION


def outcome(function: Callable[..., Any], *args: object) -> tuple[str, object]:
    """What a call did, comparable across implementations (the message only where we own it)."""
    try:
        return "returned", function(*args)
    except IndexError:
        return "IndexError", None
    except LineOverflow as exc:
        return "LineOverflow", str(exc)


@st.composite
def packet_data(draw: st.DrawFn) -> tuple[bytes, int, int, int]:
    """(data, pos, size, unit): valid encodings, then cut, corrupted or padded at random."""
    unit = draw(st.sampled_from(UNITS))
    pixels = draw(st.integers(0, 300))
    palette = draw(st.lists(st.binary(min_size=unit, max_size=unit), min_size=1, max_size=3))
    rng = random.Random(draw(st.integers(0, 2**32)))  # runs and noise, as pages have
    line = b"".join(
        rng.choice(palette) if rng.random() < 0.7 else rng.randbytes(unit) for _ in range(pixels)
    )
    data = bytearray(draw(st.binary(max_size=3)) + encode_packets(line, unit))
    prefix = len(data) - len(encode_packets(line, unit))
    mutation = draw(st.sampled_from(["none", "cut", "flip", "fill", "junk", "noise"]))
    if mutation == "cut" and data:
        del data[draw(st.integers(0, len(data) - 1)) :]
    elif mutation == "flip" and data:
        data[draw(st.integers(0, len(data) - 1))] = draw(st.integers(0, 255))
    elif mutation == "fill":
        data.insert(draw(st.integers(prefix, len(data))), 0x80)
    elif mutation == "junk":
        data += draw(st.binary(max_size=40))
    elif mutation == "noise":
        data = bytearray(draw(st.binary(max_size=600)))
    size = len(line) + draw(st.sampled_from([0, 0, 0, -unit, unit, -1, 1, 128 * unit]))
    pos = prefix if draw(st.booleans()) else draw(st.integers(0, len(data) + 2))
    return bytes(data), pos, max(size, 0), unit


@needs_extension
@settings(max_examples=400, deadline=None)
@given(case=packet_data(), fill=st.sampled_from([0, 255]))
def test_decode_line_matches_the_reference(case: tuple[bytes, int, int, int], fill: int) -> None:
    data, pos, size, unit = case
    native = outcome(codec().decode_line, data, pos, size, unit, fill)
    assert native == outcome(decode_line_py, data, pos, size, unit, fill)


@needs_extension
@settings(max_examples=200, deadline=None)
@given(
    data=st.binary(max_size=400), pos=st.integers(0, 20), size=st.integers(-2, 500),
    unit=st.sampled_from(UNITS), fill=st.sampled_from([0, 255]),
)
def test_decode_line_matches_on_arbitrary_bytes(
    data: bytes, pos: int, size: int, unit: int, fill: int
) -> None:
    native = outcome(codec().decode_line, data, pos, size, unit, fill)
    assert native == outcome(decode_line_py, data, pos, size, unit, fill)


@needs_extension
def test_decode_line_edge_cases_match() -> None:
    cases = [
        (b"\x05", 0, 6, 1),  # run without its byte
        (b"\x05\x01", 0, 2, 1),  # run overflows the line
        (b"\xfd\x01\x02", 0, 4, 1),  # literal of 4 with 2 bytes left: ends early
        (b"\xf0\x01\x02\x03\x04\x05", 0, 5, 1),  # literal overshoots, yet the bytes fit
        (b"\x03\x01", 0, 4, 2),  # run of 2-byte units with half a unit
        (b"\x80", 0, 10, 3),
        (b"", 0, 0, 1),
        (b"", 5, 0, 1),
        (b"\x00\x01", 9, 1, 1),
        (b"\x00\x01", 0, -1, 1),
    ]
    for data, pos, size, unit in cases:
        for fill in (0, 255):
            native = outcome(codec().decode_line, data, pos, size, unit, fill)
            assert native == outcome(decode_line_py, data, pos, size, unit, fill), data


@needs_extension
def test_decode_line_refuses_what_the_reference_never_gets() -> None:
    for args in [(b"\x00\x01", -1, 1, 1, 0), (b"\x00\x01", 0, 1, 0, 0), (b"\x00", 0, 1, 1, 256)]:
        with pytest.raises(ValueError):
            codec().decode_line(*args)
    with pytest.raises(TypeError):
        codec().decode_line("text", 0, 1, 1, 0)


def band_reference(
    data: bytes, pos: int, size: int, unit: int, fill: int, max_rows: int, lines_left: int,
    stop_after: int,
) -> tuple[list[tuple[bytes, int]], int, int]:
    """Where PacketRasterReader's Python loop would stop or raise, and what it decoded."""
    rows: list[tuple[bytes, int]] = []
    lines = 0
    while len(rows) < max_rows and lines < lines_left:
        if pos > stop_after or pos >= len(data) or data[pos] + 1 > lines_left - lines:
            break
        repeat = data[pos] + 1
        try:
            line, pos = decode_line_py(data, pos + 1, size, unit, fill)
        except (IndexError, LineOverflow):
            break
        rows.append((line, repeat))
        lines += repeat
    return rows, pos, lines


@needs_extension
@settings(max_examples=200, deadline=None)
@given(
    case=packet_data(), repeats=st.binary(min_size=1, max_size=6), max_rows=st.integers(0, 8),
    lines_left=st.integers(0, 600), stop_after=st.integers(-5, 2000),
)
def test_decode_band_stops_where_the_python_loop_would(
    case: tuple[bytes, int, int, int], repeats: bytes, max_rows: int, lines_left: int,
    stop_after: int,
) -> None:
    data, _, size, unit = case
    records = b"".join(bytes([count]) + data for count in repeats)
    args = (records, 0, size, unit, 255, max_rows, lines_left, stop_after)
    assert codec().decode_band(*args) == band_reference(*args)


@needs_extension
@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=700),
        st.lists(st.tuples(st.integers(0, 255), st.integers(0, 300)), max_size=12).map(
            lambda runs: b"".join(bytes([value]) * count for value, count in runs)
        ),
        st.lists(st.sampled_from([b"\x00", b"\xff", b"\x80", b"\x55\x55\x55", b"ab"]),
                 max_size=200).map(b"".join),
    )
)
def test_packbits_matches_the_reference_and_round_trips(data: bytes) -> None:
    assert codec().packbits(data) == packbits_py(data)
    assert codec().packbits_bilevel(data) == packbits_bilevel_py(data)
    assert unpackbits(codec().packbits(data)) == data
    assert unpackbits(codec().packbits_bilevel(data)) == data


@needs_extension
def test_packbits_at_packet_boundaries() -> None:
    for length in [0, 1, 2, 3, 127, 128, 129, 130, 255, 256, 257, 258, 385]:
        for data in (bytes([0x80]) * length, bytes(length), b"\x01\x02" * length,
                     bytes(range(256)) * (length // 256) + bytes(length % 256)):
            assert codec().packbits(data) == packbits_py(data), (length, data[:4])
            assert codec().packbits_bilevel(data) == packbits_bilevel_py(data), length
            assert unpackbits(codec().packbits(data)) == data


@st.composite
def row_and_seed(draw: st.DrawFn) -> tuple[bytes, bytes]:
    seed = draw(st.binary(max_size=400))
    if draw(st.booleans()):
        return draw(st.binary(max_size=400)), seed
    row = bytearray(seed + draw(st.binary(max_size=20)))  # mostly equal: the real case
    for _ in range(draw(st.integers(0, 30))):
        if row:
            row[draw(st.integers(0, len(row) - 1))] = draw(st.integers(0, 255))
    cut = draw(st.integers(0, len(row)))
    return bytes(row[:cut] if draw(st.booleans()) else row), seed


@needs_extension
@settings(max_examples=300, deadline=None)
@given(pair=row_and_seed())
def test_delta_row_matches_the_reference(pair: tuple[bytes, bytes]) -> None:
    row, seed = pair
    assert codec().delta_row(row, seed) == _delta_row_py(row, seed)


@needs_extension
def test_delta_row_long_offsets_and_gaps() -> None:
    rng = random.Random(5)
    for width in (0, 1, 31, 32, 300, 286, 600, 5000):
        seed = bytes(rng.getrandbits(8) for _ in range(width))
        for gap in (1, 2, 3, 4, 254, 255, 256, 290):
            row = bytearray(seed)
            for at in range(0, width, gap + 1):
                row[at] ^= 0x5A
            assert codec().delta_row(bytes(row), seed) == _delta_row_py(bytes(row), seed)


def page_stream(writer: PwgRasterWriter | UrfWriter, rng: random.Random) -> bytes:
    pixels = rng.choice([PixelFormat.SGRAY_8, PixelFormat.SRGB_8])
    page = RasterPage(width=rng.randint(1, 40), height=rng.randint(1, 80), pixels=pixels,
                      dpi_x=300, dpi_y=300)
    size = page.bytes_per_line
    lines = [rng.choice([bytes([255]) * size, bytes(rng.getrandbits(2) for _ in range(size))])
             for _ in range(page.height)]
    start = writer.start() if isinstance(writer, PwgRasterWriter) else writer.start(1)
    return start + writer.page(page) + writer.rows((line, 1) for line in lines)


def read_all(reader: PwgRasterReader | UrfReader, data: bytes, chunk: int) -> list[object]:
    events: list[RasterEvent | str] = []
    try:
        for start in range(0, len(data), chunk):
            reader.feed(data[start : start + chunk])
            events.extend(reader.events())
        reader.end_of_input()
        events.extend(reader.events())
    except ConversionError as exc:
        events.append(str(exc))
    return list(events)


@needs_extension
@settings(max_examples=80, deadline=None)
@given(seed=st.integers(0, 10_000), chunk=st.integers(1, 300), cut=st.integers(0, 400),
       flip=st.integers(0, 255), urf=st.booleans())
def test_readers_give_the_same_events_and_errors_with_and_without_c(
    seed: int, chunk: int, cut: int, flip: int, urf: bool
) -> None:
    rng = random.Random(seed)
    data = bytearray(page_stream(UrfWriter() if urf else PwgRasterWriter(), rng))
    make_reader = UrfReader if urf else PwgRasterReader
    header = make_reader().stream_header_size + make_reader().page_header_size
    if cut and len(data) > header:
        at = header + cut % (len(data) - header)
        if seed % 2:
            del data[at:]
        else:
            data[at] = flip
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(packet_reader, "_native_decode_band", codec().decode_band)
        patch.setattr(packet_reader, "decode_line", codec().decode_line)
        native = read_all(make_reader(), bytes(data), chunk)
        patch.setattr(packet_reader, "_native_decode_band", None)
        patch.setattr(packet_reader, "decode_line", decode_line_py)
        assert native == read_all(make_reader(), bytes(data), chunk)


def test_active_implementation_follows_the_environment() -> None:
    probe = (
        "from drivers.filters import convert, linecodec; from drivers.languages import pcl; "
        "from drivers.model import accel; "
        "print(accel.ACCELERATED, linecodec.decode_line, pcl._pcl_band, convert._native_dither)"
    )
    for forced, expected in (("1", "False <function decode_line_py"), ("", str(bool(EXTENSION)))):
        env = {**os.environ, accel.PURE_PYTHON_ENV: forced}
        done = subprocess.run([sys.executable, "-c", probe], env=env, cwd=ROOT, check=True,
                              capture_output=True, text=True, timeout=60)
        assert done.stdout.startswith(expected)
        native = not forced and EXTENSION is not None
        assert ("<function _pcl_band_py" in done.stdout) is not native
        assert done.stdout.rstrip().endswith("None") is not native
        assert done.stderr == ""


# ---- PCL raster bands and the ordered dither ----------------------------------------------


def band_lines(rng: random.Random, width: int, count: int) -> list[Row]:
    """Rows as a page has them: blank, cropped-away ink, repeats, near repeats, odd lengths."""
    rows: list[Row] = []
    last = bytes(width)
    for _ in range(count):
        kind = rng.random()
        if kind < 0.15:
            line = bytes(rng.choice([0, width, rng.randint(0, 12)]))
        elif kind < 0.25:
            line = bytes(rng.randint(0, 10)) + b"\x01" + bytes(width)  # ink inside the crop
        elif kind < 0.45:
            line = last
        elif kind < 0.6:
            changed = bytearray(last)
            for _ in range(rng.randint(1, 6)):
                if changed:
                    changed[rng.randrange(len(changed))] = rng.choice([0, 0xFF, 0x18])
            line = bytes(changed)
        else:
            size = max(0, width + rng.choice([0, 0, 0, -3, 5]))
            line = bytes(rng.choice((0, 0, 0xFF, 0x18, rng.getrandbits(8))) for _ in range(size))
            line += bytes(rng.choice([0, 0, 4, 40]))  # trailing white
        last = line
        rows.append((line, rng.choice([1, 1, 1, 2, rng.randint(1, 300), 0])))
    return rows


@st.composite
def pcl_bands(draw: st.DrawFn) -> list[list[Row]]:
    rng = random.Random(draw(st.integers(0, 2**32)))
    width = draw(st.integers(0, 80))
    sizes = draw(st.lists(st.integers(0, 12), min_size=1, max_size=5))
    return [band_lines(rng, width, size) for size in sizes]


@needs_extension
@settings(max_examples=300, deadline=None)
@given(bands=pcl_bands(), crop=st.integers(0, 10), compression=st.sampled_from([2, 3]),
       blank_rows=st.sampled_from([0, 0, 1, 7, 300]), seed=st.binary(max_size=60))
def test_pcl_band_matches_the_reference_across_bands(
    bands: list[list[Row]], crop: int, compression: int, blank_rows: int, seed: bytes
) -> None:
    native = reference = (blank_rows, seed)  # carried from band to band by each one
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(pcl, "packbits_bilevel", packbits_bilevel_py)
        patch.setattr(pcl, "_delta_row", _delta_row_py)
        for rows in bands:
            out, native_blank, native_seed = codec().pcl_band(rows, crop, compression, *native)
            expected, blank, seed = _pcl_band_py(rows, crop, compression, *reference)
            native, reference = (native_blank, native_seed), (blank, seed)
            assert (out, native) == (expected, reference)


@needs_extension
def test_pcl_band_takes_any_iterable_and_refuses_what_the_writer_never_sends() -> None:
    rows = [(b"\0\xff\xff\xff\xff\x01\0", 3), (b"", 2), (b"\0\0\x10", 1)]
    for compression in (2, 3):
        expected = _pcl_band_py(rows, 1, compression, 4, b"\x07")
        assert codec().pcl_band(iter(rows), 1, compression, 4, b"\x07") == expected
        assert codec().pcl_band(tuple(rows), 1, compression, 4, bytearray(b"\x07")) == expected
    for args in [(rows, -1, 2, 0, b""), (rows, 0, 1, 0, b""), (rows, 0, 3, -1, b""),
                 ([(b"\x01", -1)], 0, 2, 0, b"")]:
        with pytest.raises(ValueError):
            codec().pcl_band(*args)
    wrong_types: list[tuple[object, ...]] = [
        ([b"\x01"], 0, 2, 0, b""), ([(b"\x01", 1.0)], 0, 2, 0, b""), ([("text", 1)], 0, 2, 0, b""),
        (rows, 0, 2, 0, "seed"), (5, 0, 2, 0, b""), (rows, 0, 2, 0),
    ]
    for wrong in wrong_types:
        with pytest.raises(TypeError):
            codec().pcl_band(*wrong)


@st.composite
def gray_band(draw: st.DrawFn) -> tuple[list[bytes], int]:
    width = draw(st.integers(1, 200))
    rng = random.Random(draw(st.integers(0, 2**32)))
    levels = [0, 255, 255, 254, 1, 128, 127]  # the ends, and values next to thresholds
    lines = []
    for _ in range(draw(st.integers(1, 40))):
        ink = rng.choice([0.0, 0.05, 0.5, 1.0])  # all white to all noise
        line = bytes(rng.choice(levels) if rng.random() > ink else rng.getrandbits(8)
                     for _ in range(width))
        lines.extend([line] * rng.choice([1, 1, 3, 17]))
    return lines, width


@needs_extension
@settings(max_examples=300, deadline=None)
@given(band=gray_band(), y=st.one_of(st.integers(0, 40), st.integers(-100, 10**9)))
def test_ordered_dither_matches_pillow(band: tuple[list[bytes], int], y: int) -> None:
    lines, width = band
    reference = Ditherer(width)._run_py(lines, y)
    assert codec().ordered_dither(lines, width, y, _THRESHOLD_MATRIX) == reference


@needs_extension
@settings(max_examples=60, deadline=None)
@given(band=gray_band(), y=st.integers(0, 5000))
def test_ditherer_gives_the_same_rows_with_and_without_c(
    band: tuple[list[bytes], int], y: int
) -> None:
    lines, width = band
    white = b"\xff" * width
    rows = [(line, 2) for line in lines[:5]] + [(white, 9)] + [(line, 1) for line in lines]
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(convert, "_native_dither", codec().ordered_dither)
        native = Ditherer(width).dither(rows, y)
        patch.setattr(convert, "_native_dither", None)
        assert native == Ditherer(width).dither(rows, y)


@needs_extension
def test_ordered_dither_refuses_what_the_ditherer_never_sends() -> None:
    for args in [([b"\0" * 4], 5, 0, _THRESHOLD_MATRIX), ([b"\0" * 4], 4, 0, b"\x80" * 255),
                 ([b"\0" * 4], -4, 0, _THRESHOLD_MATRIX)]:
        with pytest.raises(ValueError):
            codec().ordered_dither(*args)
    with pytest.raises(TypeError):
        codec().ordered_dither(["text"], 4, 0, _THRESHOLD_MATRIX)
    assert codec().ordered_dither([], 4, 0, _THRESHOLD_MATRIX) == []
    assert codec().ordered_dither([b""], 0, 3, _THRESHOLD_MATRIX) == [(b"", 1)]
