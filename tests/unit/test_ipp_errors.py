"""Every structural fault the IPP reader detects, with its status hint."""

from __future__ import annotations

import pytest

from ippwire.enums import Status
from ippwire.errors import IppProtocolError
from ippwire.reader import (
    DEFAULT_LIMITS,
    NEED_DATA,
    IppReader,
    Limits,
    RequestReceived,
    decode_message,
)
from tests.support.ipp_bytes import HEADER, entry, one_group

BAD = Status.CLIENT_ERROR_BAD_REQUEST
TOO_LONG = Status.CLIENT_ERROR_REQUEST_VALUE_TOO_LONG
TOO_LARGE = Status.CLIENT_ERROR_REQUEST_ENTITY_TOO_LARGE

CHARSET = entry(0x47, "attributes-charset", b"utf-8")


def rejected(
    wire: bytes, match: str, status: Status = BAD, limits: Limits = DEFAULT_LIMITS
) -> None:
    with pytest.raises(IppProtocolError, match=match) as caught:
        decode_message(wire, limits)
    assert caught.value.status == status
    assert caught.value.message == str(caught.value)


@pytest.mark.parametrize("tag", [0x00, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F])
def test_reserved_delimiter_tags(tag: int) -> None:
    rejected(
        HEADER + b"\x01" + CHARSET + bytes([tag]) + b"\x03",
        f"reserved delimiter tag 0x{tag:02x} at byte 37",
    )


def test_value_before_any_group() -> None:
    rejected(HEADER + CHARSET + b"\x03", "before any group at byte 8")


def test_first_value_of_a_group_needs_a_name() -> None:
    rejected(one_group(entry(0x44, "", b"x")), "without an attribute name")
    # a new group forgets the previous group's attribute
    rejected(one_group(CHARSET, b"\x02" + entry(0x44, "", b"x")), "without an attribute name")


@pytest.mark.parametrize(
    ("tag", "value"),
    [
        (0x21, b"\x00\x00\x01"),
        (0x21, b"\x00\x00\x00\x00\x01"),
        (0x23, b""),
        (0x22, b""),
        (0x22, b"\x00\x01"),
        (0x22, b"\x02"),
        (0x32, bytes(8)),
        (0x32, bytes(10)),
        (0x33, bytes(7)),
        (0x33, bytes(9)),
        (0x31, bytes.fromhex("07e8020f0d2e3b052b00")),
    ],
)
def test_exact_lengths_and_boolean_values(tag: int, value: bytes) -> None:
    rejected(one_group(CHARSET, entry(tag, "bad-one", value)), "of 'bad-one' at byte 37")


@pytest.mark.parametrize(
    "fields",
    [
        "07e80d0f0d2e3b052b0000",  # month 13
        "07e8021e0d2e3b052b0000",  # 30 February
        "0000010100000000002b0000",  # year 0 (and 12 bytes)
        "07e8020f182e3b052b0000",  # hour 24
        "07e8020f0d3c3b052b0000",  # minute 60
        "07e8020f0d2e3d052b0000",  # second 61
        "07e8020f0d2e3b0a2b0000",  # decisecond 10
        "07e8020f0d2e3b05200000",  # direction ' '
        "07e8020f0d2e3b052b1800",  # 24 hours from UTC
        "07e8020f0d2e3b052b003c",  # 60 minutes from UTC
    ],
)
def test_invalid_date_time_fields(fields: str) -> None:
    rejected(
        one_group(entry(0x31, "printer-current-time", bytes.fromhex(fields))),
        "printer-current-time",
    )


@pytest.mark.parametrize(
    "value",
    [
        b"\x00\x02e",  # shorter than both length fields
        b"\x00\x05en\x00\x01x",  # language overruns
        b"\x00\x02en\x00\x05abc",  # text overruns
        b"\x00\x02en\x00\x01abc",  # bytes left over
        b"\x00\x02en\x00\x02\xc3\x28",  # text not UTF-8
        b"\x00\x02\xe9n\x00\x01x",  # language not ASCII
    ],
)
@pytest.mark.parametrize("tag", [0x35, 0x36])
def test_string_with_language_inner_lengths_and_encodings(tag: int, value: bytes) -> None:
    rejected(one_group(entry(tag, "printer-info", value)), "'printer-info'")


@pytest.mark.parametrize("tag", [0x41, 0x42])
def test_text_and_name_must_be_utf8(tag: int) -> None:
    rejected(one_group(entry(tag, "job-name", b"ok\xff")), "'job-name' at byte 9")


@pytest.mark.parametrize("tag", [0x44, 0x45, 0x46, 0x47, 0x48, 0x49])
def test_ascii_syntaxes_reject_other_bytes(tag: int) -> None:
    rejected(one_group(entry(tag, "thing", "é".encode())), "'thing'")


def test_attribute_name_must_be_ascii() -> None:
    rejected(one_group(entry(0x44, "naïve", b"x")), "name is not US-ASCII at byte 9")


def collection(*members: bytes, name: str = "media-col") -> bytes:
    return entry(0x34, name, b"") + b"".join(members) + entry(0x37, "", b"")


def member(name: bytes, *values: bytes) -> bytes:
    return entry(0x4A, "", name) + b"".join(values)


INTEGER = entry(0x21, "", b"\x00\x00\x00\x01")


@pytest.mark.parametrize(
    ("wire", "match"),
    [
        (entry(0x34, "c", b"\x00"), "begCollection of 'c' has a value"),
        (entry(0x4A, "m", b"x"), "memberAttrName outside a collection"),
        (entry(0x37, "", b""), "endCollection without begCollection"),
        (collection() + entry(0x37, "", b""), "endCollection without begCollection"),
        (collection(INTEGER), "collection value without memberAttrName"),
        (collection(member(b"")), "empty memberAttrName"),
        (collection(member(b"m\xff", INTEGER)), "memberAttrName is not US-ASCII"),
        (collection(member(b"m")), "member 'm' has no value"),
        (collection(member(b"m"), member(b"n", INTEGER)), "member 'm' has no value"),
        (collection(entry(0x21, "named", b"\x00\x00\x00\x01")), "named attribute 'named' inside"),
        (collection(member(b"m", INTEGER), entry(0x37, "x", b"")), "named attribute 'x' inside"),
        (collection(member(b"m", INTEGER), entry(0x37, "", b"\x00")), "endCollection with a value"),
        (
            entry(0x34, "open", b"") + member(b"m", INTEGER),
            "delimiter tag 0x03 inside a collection",
        ),
        (collection(member(b"m", entry(0x21, "", b"\x00"))), "of 'm' at byte"),
    ],
)
def test_malformed_collections(wire: bytes, match: str) -> None:
    rejected(one_group(CHARSET, wire), match)


def nested(depth: int) -> bytes:
    wire = member(b"leaf", INTEGER)
    for _ in range(depth - 1):
        wire = member(b"inner", entry(0x34, "", b"") + wire + entry(0x37, "", b""))
    return collection(wire, name="deep")


def test_collection_depth_limit() -> None:
    message, _ = decode_message(one_group(nested(8)))
    assert message.groups[0].attributes[0].name == "deep"
    rejected(one_group(nested(9)), "nested deeper than 8 in 'inner'")
    rejected(one_group(nested(3)), "nested deeper than 2", limits=Limits(max_depth=2))


def test_value_and_name_length_limits() -> None:
    rejected(
        one_group(entry(0x41, "info", bytes(32768))),
        "value length 32768 over 32767 at byte 9",
        TOO_LONG,
    )
    rejected(one_group(entry(0x41, "x" * 40000, b"")), "name length 40000", TOO_LONG)
    limits = Limits(max_value_length=10)
    rejected(one_group(entry(0x41, "info", bytes(11))), "value length 11 over 10", TOO_LONG, limits)
    message, _ = decode_message(one_group(entry(0x41, "info", b"0123456789")), limits)
    assert message.groups[0].attributes[0].value == "0123456789"


def test_attribute_section_size_limit() -> None:
    wire = one_group(entry(0x41, "info", bytes(100)))
    assert len(wire) == 8 + 1 + 5 + 4 + 100 + 1
    message, _ = decode_message(wire, Limits(max_attribute_bytes=len(wire)))
    assert message.groups
    rejected(wire, "exceeds 118 bytes", TOO_LARGE, Limits(max_attribute_bytes=len(wire) - 1))
    rejected(wire, "exceeds 100 bytes at byte 9", TOO_LARGE, Limits(max_attribute_bytes=100))
    rejected(wire, "exceeds 4 bytes at byte 0", TOO_LARGE, Limits(max_attribute_bytes=4))


def test_size_limit_trips_before_the_value_arrives() -> None:
    reader = IppReader(Limits(max_attribute_bytes=1000))
    reader.feed(HEADER + b"\x01" + entry(0x41, "info", bytes(2000))[:9])
    with pytest.raises(IppProtocolError) as caught:
        reader.next_event()
    assert caught.value.status == TOO_LARGE


def test_attribute_count_limit_counts_members() -> None:
    two = one_group(CHARSET, collection(member(b"a", INTEGER), member(b"b", INTEGER)))
    assert decode_message(two, Limits(max_attributes=4))[0].groups
    rejected(two, "more than 3 attributes at byte 66", TOO_LARGE, Limits(max_attributes=3))


@pytest.mark.parametrize(
    "wire",
    [
        b"",
        HEADER[:5],
        HEADER,
        HEADER + b"\x01",
        HEADER + b"\x01" + CHARSET[:2],
        HEADER + b"\x01" + CHARSET[:-1],
        HEADER + b"\x01" + CHARSET,
    ],
)
def test_truncated_messages(wire: bytes) -> None:
    rejected(wire, f"truncated message: input ended at byte {len(wire)}")


def test_errors_are_sticky_and_feeding_after_end_is_a_bug() -> None:
    reader = IppReader()
    reader.feed(HEADER + b"\x00")
    with pytest.raises(IppProtocolError):
        reader.next_event()
    with pytest.raises(IppProtocolError, match="reserved delimiter"):
        reader.next_event()

    reader = IppReader()
    reader.feed(HEADER)
    assert reader.next_event() is NEED_DATA
    reader.feed(b"\x03")
    reader.end_of_input()
    assert isinstance(reader.next_event(), RequestReceived)
    with pytest.raises(RuntimeError):
        reader.feed(b"more")


def test_status_hint_defaults_to_bad_request() -> None:
    error = IppProtocolError("broken")
    assert error.status == BAD and error.message == "broken"
    assert "BAD_REQUEST" in repr(error)
