"""Hypothesis properties of the IPP codec: round trips, chunking, hostile input."""

from __future__ import annotations

from itertools import pairwise

from hypothesis import given, settings
from hypothesis import strategies as st

from ippwire.errors import IppProtocolError
from ippwire.model import Message
from ippwire.reader import (
    DEFAULT_LIMITS,
    NEED_DATA,
    DocumentData,
    EndOfDocument,
    IppReader,
    Limits,
    RequestReceived,
    decode_message,
)
from ippwire.writer import encode_message
from tests.support.ipp_strategies import DOCUMENTS, MESSAGES

settings.register_profile("ipp", max_examples=200, deadline=None)
IPP = settings.get_profile("ipp")


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
