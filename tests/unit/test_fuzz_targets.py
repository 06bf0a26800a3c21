"""Issue 12, item 7: the fuzz targets of tests/fuzz/targets.py in a short fixed-seed pass
(`make fuzz` runs them for minutes), their seeds, and what a tiny raster input that claims a
huge page may make a reader allocate."""

from __future__ import annotations

import struct
import tracemalloc

import pytest
from hypothesis import given, settings

from drivers.errors import ConversionError
from drivers.filters.pwg_raster import HEADER_SIZE, SYNC, PwgRasterReader
from drivers.filters.urf import UrfReader, file_header
from drivers.model.raster import Band, PageStart
from ippwire.http_auth import parse_challenges
from ippwire.reader import decode_message
from tests.fuzz import seeds
from tests.fuzz.strategies import CHUNKS, INPUTS
from tests.fuzz.targets import (
    TARGETS,
    _http_parse,
    _raster_events,
    _read_responses,
    pwg_raster,
)

EXAMPLES = {"ipp": 150, "http": 150, "pwg": 100, "urf": 150, "lpd": 150, "pjl": 150,
            "http-response": 150, "http-auth": 150}


def _fixed_seed_pass(name: str) -> None:
    @settings(derandomize=True, max_examples=EXAMPLES[name], deadline=None, database=None)
    @given(INPUTS[name], CHUNKS)
    def run(data: bytes, chunk: int) -> None:
        TARGETS[name].run(data, chunk)

    run()


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_target_holds_its_contract_on_mutated_inputs(name: str) -> None:
    _fixed_seed_pass(name)


def test_every_target_has_inputs() -> None:
    assert set(INPUTS) == set(TARGETS) == set(EXAMPLES)


def test_seeds_are_valid_inputs() -> None:
    """The mutations start from inputs the parsers accept, or the fuzzing stays shallow."""
    for data in seeds.ipp_seeds():
        message, _ = decode_message(data)
        assert message.groups
    for data in seeds.http_seeds():
        requests, error, truncated = _http_parse(data, 0)
        assert requests and error is None and not truncated, data[:60]
    for data in seeds.pwg_seeds():
        assert not isinstance(_raster_events(PwgRasterReader(), data, 0), str)
    for data in seeds.urf_seeds():
        assert not isinstance(_raster_events(UrfReader(), data, 0), str)
    for data in seeds.http_response_seeds():
        responses, failure = _read_responses(data, 0)
        # Every response whole; after keep-alive ones the close comes where the next would.
        last = responses[-1]
        assert all(response.ended for response in responses[:-1]), data[:60]
        assert (last.ended and failure is None) or (not last.heads and failure), data[:60]
        assert responses[0].heads[-1].status in (200, 204, 401)
    for data in seeds.AUTH_SEEDS:
        assert parse_challenges(data.decode("latin-1").split("\n")), data


def test_ipp_length_fields_point_at_lengths() -> None:
    message = seeds.ipp_seeds()[0]
    fields = seeds.ipp_length_fields(message)
    first_name_length = int.from_bytes(message[fields[0][0] : fields[0][0] + 2], "big")
    assert first_name_length == len("attributes-charset")
    assert len(fields) == 2 * 5


def _pwg_page(width: int, height: int) -> bytes:
    header = bytearray(HEADER_SIZE)
    for offset, value in ((276, 300), (280, 300), (372, width), (376, height), (384, 8),
                          (388, 24), (392, width * 3), (400, 19), (420, 3)):
        struct.pack_into(">I", header, offset, value)
    return bytes(header)


def test_pwg_header_claiming_a_huge_page_is_refused() -> None:
    reader = PwgRasterReader()  # the default limits, as the gateway uses them
    reader.feed(SYNC + _pwg_page(100_000, 100_000))
    reader.end_of_input()
    with pytest.raises(ConversionError, match="absurd size"):
        list(reader.events())


def test_urf_header_claiming_a_huge_page_is_refused() -> None:
    reader = UrfReader()
    reader.feed(file_header(1) + bytes([24, 1, 1, 0]) + bytes(8)
                + struct.pack(">III", 0xFFFFFFFF, 0xFFFFFFFF, 300) + bytes(8))
    reader.end_of_input()
    with pytest.raises(ConversionError, match="absurd size"):
        list(reader.events())


def test_widest_allowed_page_is_streamed_in_bounded_memory() -> None:
    """1,900 bytes claim a 40,000 x 120,000 pixel RGB page (14 GB decoded) and hold 16,384 of
    its lines before they stop: the reader holds a band of distinct lines at a time, never
    the page, and refuses the truncated rest."""
    width = 40_000
    lines = b"\xff\x80" * 64  # 64 records: 256 white lines each, the rest-of-line fill packet
    reader = PwgRasterReader()
    tracemalloc.start()
    try:
        reader.feed(SYNC + _pwg_page(width, 120_000) + lines)
        reader.end_of_input()
        rows = 0
        with pytest.raises(ConversionError, match="truncated"):
            for event in reader.events():
                assert isinstance(event, PageStart | Band)
                if isinstance(event, Band):
                    rows += sum(count for _, count in event.rows)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert rows == 64 * 256
    line_bytes = width * 3
    # The band the loop still holds while the reader decodes the next one, and a few lines.
    assert peak < (2 * reader.limits.band_rows + 4) * line_bytes


def test_pwg_target_refuses_what_its_limits_refuse() -> None:
    """The target's own small limits are what keep its work bounded: a page over them is a
    ConversionError the target accepts, not a failure."""
    pwg_raster(SYNC + _pwg_page(601, 1) + b"\x00\x80", 0)
