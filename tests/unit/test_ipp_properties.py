"""Hypothesis properties of the IPP codec: round trips, chunking, hostile input."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import cache
from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from gateway.ipp.enums import GroupTag
from gateway.ipp.errors import IppProtocolError
from gateway.ipp.model import (
    Attribute,
    Collection,
    Group,
    IntRange,
    Message,
    Resolution,
    StringWithLanguage,
    Value,
)
from gateway.ipp.reader import (
    DEFAULT_LIMITS,
    NEED_DATA,
    DocumentData,
    EndOfDocument,
    IppReader,
    Limits,
    RequestReceived,
    decode_message,
)
from gateway.ipp.writer import encode_message

settings.register_profile("ipp", max_examples=200, deadline=None)
IPP = settings.get_profile("ipp")

INT32 = st.integers(-(2**31), 2**31 - 1)
ASCII = st.text(st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=16)
NAMES = st.text("abcdefghijklmnopqrstuvwxyz-0123456789", min_size=1, max_size=12)
UTC_OFFSETS = st.integers(-(23 * 60 + 59), 23 * 60 + 59).map(
    lambda minutes: timezone(timedelta(minutes=minutes))
)


def _wire_precision(moment: datetime, zone: timezone) -> datetime:
    return moment.replace(microsecond=moment.microsecond // 100_000 * 100_000, tzinfo=zone)


DATE_TIMES = st.builds(_wire_precision, st.datetimes(), UTC_OFFSETS)
LANGUAGE_STRINGS = st.builds(StringWithLanguage, st.text(max_size=16), ASCII)
OUT_OF_BAND_TAGS = st.sampled_from([0x10, 0x11, 0x12, 0x13, 0x15, 0x16, 0x17, 0x1F])
OPAQUE_TAGS = st.sampled_from([0x20, 0x24, 0x2F, 0x38, 0x40, 0x43, 0x4B, 0x5F, 0x60, 0x7F, 0xFF])
STRING_TAGS = st.sampled_from([0x41, 0x42])
ASCII_TAGS = st.sampled_from([0x44, 0x45, 0x46, 0x47, 0x48, 0x49])

PLAIN_VALUES: st.SearchStrategy[tuple[int, Value]] = st.one_of(
    st.tuples(st.sampled_from([0x21, 0x23]), INT32),
    st.tuples(st.just(0x22), st.booleans()),
    st.tuples(st.just(0x30), st.binary(max_size=16)),
    st.tuples(st.just(0x31), DATE_TIMES),
    st.tuples(st.just(0x32), st.builds(Resolution, INT32, INT32, st.integers(-128, 127))),
    st.tuples(st.just(0x33), st.builds(IntRange, INT32, INT32)),
    st.tuples(st.sampled_from([0x35, 0x36]), LANGUAGE_STRINGS),
    st.tuples(STRING_TAGS, st.text(max_size=16)),
    st.tuples(ASCII_TAGS, ASCII),
    st.tuples(OUT_OF_BAND_TAGS, st.none()),
    st.tuples(OPAQUE_TAGS, st.binary(max_size=16)),
)


@cache
def values(depth: int) -> st.SearchStrategy[tuple[int, Value]]:
    """Plain values, or collections nested up to `depth` levels."""
    if depth == 0:
        return PLAIN_VALUES
    members = st.lists(attributes(depth - 1), max_size=3, unique_by=lambda a: a.name)
    return st.one_of(PLAIN_VALUES, st.tuples(st.just(0x34), members.map(Collection)))


@cache
def attributes(depth: int) -> st.SearchStrategy[Attribute]:
    return st.builds(Attribute, NAMES, st.lists(values(depth), min_size=1, max_size=3))


GROUP_TAGS = st.sampled_from([tag for tag in GroupTag if tag != GroupTag.END])
GROUPS = st.builds(Group, GROUP_TAGS, st.lists(attributes(3), max_size=4))
MESSAGES = st.builds(
    Message,
    st.tuples(st.integers(0, 255), st.integers(0, 255)),
    st.integers(0, 0xFFFF),
    INT32,  # request-id is signed on the wire
    st.lists(GROUPS, max_size=3),
)
DOCUMENTS = st.binary(max_size=64)


def read_in_pieces(wire: bytes, cuts: list[int], drain_each: bool) -> tuple[Message, bytes]:
    reader = IppReader()
    message: Message | None = None
    document: list[bytes] = []
    bounds = [0, *sorted(cuts), len(wire)]
    pieces = [wire[start:end] for start, end in pairwise(bounds)]
    for index, piece in enumerate(pieces):
        reader.feed(piece)
        if index == len(pieces) - 1:
            reader.end_of_input()
        elif not drain_each:
            continue
        while (event := reader.next_event()) is not NEED_DATA:
            if isinstance(event, RequestReceived):
                assert message is None
                message = event.message
            elif isinstance(event, DocumentData):
                assert message is not None and event.data
                document.append(event.data)
            else:
                assert isinstance(event, EndOfDocument)
                assert message is not None
                return message, b"".join(document)
    raise AssertionError("no EndOfDocument after end_of_input")


def outcome(wire: bytes, limits: Limits = DEFAULT_LIMITS) -> tuple[Message, bytes] | str:
    """The decoded message, or the error text; nothing but IppProtocolError may escape."""
    try:
        return decode_message(wire, limits)
    except IppProtocolError as error:
        assert error.message
        return f"{error.status.name}: {error.message}"


@IPP
@given(MESSAGES, DOCUMENTS)
def test_encode_decode_round_trip(message: Message, document: bytes) -> None:
    wire = encode_message(message)
    assert decode_message(wire + document) == (message, document)


@IPP
@given(
    MESSAGES,
    DOCUMENTS,
    st.lists(st.integers(0, 4096), max_size=12),
    st.booleans(),
)
def test_any_chunking_gives_the_same_events(
    message: Message, document: bytes, cuts: list[int], drain_each: bool
) -> None:
    wire = encode_message(message) + document
    in_range = [min(cut, len(wire)) for cut in cuts]
    assert read_in_pieces(wire, in_range, drain_each) == (message, document)


@IPP
@given(st.binary(max_size=300))
def test_arbitrary_bytes_raise_only_protocol_errors(wire: bytes) -> None:
    outcome(wire)
    outcome(bytes.fromhex("0200000b00000001") + b"\x01" + wire)


LIMITS = st.builds(
    Limits,
    st.integers(8, 2000),
    st.integers(0, 64),
    st.integers(0, 3),
    st.integers(0, 40),
)
MUTATIONS = st.lists(
    st.tuples(st.sampled_from(["flip", "insert", "delete", "truncate"]), st.integers(0, 2**16)),
    min_size=1,
    max_size=4,
)


def mutate(wire: bytes, mutations: list[tuple[str, int]]) -> bytes:
    data = bytearray(wire)
    for kind, number in mutations:
        at = number % (len(data) + 1)
        if kind == "flip" and at < len(data):
            data[at] ^= 1 << (number % 8)
        elif kind == "insert":
            data[at:at] = bytes([number & 0xFF])
        elif kind == "delete":
            del data[at : at + 1 + number % 4]
        elif kind == "truncate":
            del data[at:]
    return bytes(data)


@IPP
@given(MESSAGES, MUTATIONS, st.one_of(st.just(Limits()), LIMITS))
def test_mutated_messages_fail_cleanly_and_agree_when_chunked(
    message: Message, mutations: list[tuple[str, int]], limits: Limits
) -> None:
    wire = mutate(encode_message(message), mutations)
    whole = outcome(wire, limits)
    one_byte_at_a_time = IppReader(limits)
    chunked: tuple[Message, bytes] | str | None = None
    try:
        for index in range(len(wire)):
            one_byte_at_a_time.feed(wire[index : index + 1])
            event = one_byte_at_a_time.next_event()
            if isinstance(event, RequestReceived):
                chunked = (event.message, wire[index + 1 :])
                break
        else:
            one_byte_at_a_time.end_of_input()
            event = one_byte_at_a_time.next_event()
            assert isinstance(event, RequestReceived)
            chunked = (event.message, b"")
    except IppProtocolError as error:
        chunked = f"{error.status.name}: {error.message}"
    assert chunked == whole
    if isinstance(whole, tuple):  # whatever the reader accepts, the writer can write back
        assert decode_message(encode_message(whole[0]), limits)[0] == whole[0]
