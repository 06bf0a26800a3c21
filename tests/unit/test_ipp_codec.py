"""Byte tables: IPP messages <-> exact bytes (RFC 8010 and protocols.md §1)."""

from __future__ import annotations

import struct
from datetime import UTC, datetime, timedelta, timezone

import pytest

from ippwire.enums import GroupTag, Operation, Status, ValueTag
from ippwire.model import (
    Attribute,
    Collection,
    Group,
    IntRange,
    Message,
    Resolution,
    StringWithLanguage,
    Value,
)
from ippwire.reader import decode_message
from ippwire.writer import encode_attribute, encode_attributes, encode_message, request
from tests.support.ipp_bytes import GET_PRINTER_ATTRIBUTES, entry, one_group


def single_attribute(*entries: bytes) -> Attribute:
    message, _ = decode_message(one_group(*entries))
    (attribute,) = message.groups[0].attributes
    return attribute


def roundtrip(attribute: Attribute) -> bytes:
    """Encode, check that decoding gives the attribute back, return the bytes."""
    encoded = encode_attribute(attribute)
    assert single_attribute(encoded) == attribute
    return encoded


def test_worked_get_printer_attributes_request() -> None:
    message, document = decode_message(GET_PRINTER_ATTRIBUTES)
    expected = Message(
        (2, 0),
        Operation.GET_PRINTER_ATTRIBUTES,
        1,
        [
            Group(
                GroupTag.OPERATION,
                [
                    Attribute.of("attributes-charset", ValueTag.CHARSET, "utf-8"),
                    Attribute.of("attributes-natural-language", ValueTag.NATURAL_LANGUAGE, "en"),
                    Attribute.of("printer-uri", ValueTag.URI, "ipp://gw.local:631/ipp/print"),
                    Attribute.of(
                        "requested-attributes",
                        ValueTag.KEYWORD,
                        "printer-state",
                        "media-col-database",
                    ),
                ],
            )
        ],
    )
    assert message == expected
    assert document == b""
    assert encode_message(message) == GET_PRINTER_ATTRIBUTES


def test_request_builder_makes_the_worked_request() -> None:
    built = request(
        Operation.GET_PRINTER_ATTRIBUTES,
        printer_uri="ipp://gw.local:631/ipp/print",
        user=None,
        attrs={"requested-attributes": (ValueTag.KEYWORD, ["printer-state", "media-col-database"])},
    )
    assert encode_message(built) == GET_PRINTER_ATTRIBUTES


def test_request_builder_adds_user_and_job_group() -> None:
    built = request(
        Operation.PRINT_JOB,
        7,
        version=(1, 1),
        job_attrs={"copies": (ValueTag.INTEGER, 2)},
    )
    assert (built.version, built.code, built.request_id) == ((1, 1), Operation.PRINT_JOB, 7)
    names = [a.name for a in built.operation_attributes]
    assert names == ["attributes-charset", "attributes-natural-language", "requesting-user-name"]
    job_group = built.group(GroupTag.JOB)
    assert job_group is not None
    assert job_group.get("copies") == Attribute.of("copies", ValueTag.INTEGER, 2)


def test_document_bytes_follow_end_of_attributes() -> None:
    message, document = decode_message(GET_PRINTER_ATTRIBUTES + b"%PDF-1.7\n\x00\x03")
    assert message.code == Operation.GET_PRINTER_ATTRIBUTES
    assert document == b"%PDF-1.7\n\x00\x03"


MEDIA_COL_A4 = (
    entry(0x34, "media-col", b"")
    + entry(0x4A, "", b"media-size")
    + entry(0x34, "", b"")
    + entry(0x4A, "", b"x-dimension")
    + entry(0x21, "", bytes.fromhex("00005208"))
    + entry(0x4A, "", b"y-dimension")
    + entry(0x21, "", bytes.fromhex("00007404"))
    + entry(0x37, "", b"")
    + entry(0x37, "", b"")
)


def test_media_col_example_of_section_1_4() -> None:
    assert MEDIA_COL_A4.startswith(bytes.fromhex("3400096d656469612d636f6c0000"))
    attribute = single_attribute(MEDIA_COL_A4)
    media_size = Collection(
        [
            Attribute.of("x-dimension", ValueTag.INTEGER, 21000),
            Attribute.of("y-dimension", ValueTag.INTEGER, 29700),
        ]
    )
    assert attribute == Attribute.of(
        "media-col",
        ValueTag.BEGIN_COLLECTION,
        Collection([Attribute.of("media-size", 0x34, media_size)]),
    )
    assert encode_attribute(attribute) == MEDIA_COL_A4


def test_text_with_language_example() -> None:
    wire = entry(0x35, "printer-info", bytes.fromhex("0002656e000548656c6c6f"))
    attribute = single_attribute(wire)
    assert attribute.value == StringWithLanguage("Hello", "en")
    assert roundtrip(attribute) == wire


def test_name_with_language_utf8() -> None:
    text = "Bürodrucker".encode()
    wire = entry(0x36, "printer-name", b"\x00\x02de" + struct.pack(">H", len(text)) + text)
    attribute = single_attribute(wire)
    assert attribute.values == [(0x36, StringWithLanguage("Bürodrucker", "de"))]
    assert roundtrip(attribute) == wire


def test_date_time_utc_and_offset() -> None:
    utc = entry(0x31, "printer-current-time", bytes.fromhex("07e8020f0d2e3b052b0000"))
    value = single_attribute(utc).value
    assert value == datetime(2024, 2, 15, 13, 46, 59, 500_000, tzinfo=UTC)
    assert isinstance(value, datetime) and value.utcoffset() == timedelta(0)

    west = entry(0x31, "time-at-creation", bytes.fromhex("07e8020f082e3b052d051e"))
    value = single_attribute(west).value
    assert isinstance(value, datetime)
    assert value.utcoffset() == -timedelta(hours=5, minutes=30)
    assert value == datetime(2024, 2, 15, 14, 16, 59, 500_000, tzinfo=UTC)
    assert roundtrip(Attribute.of("time-at-creation", 0x31, value)) == west


def test_date_time_leap_second_is_clamped() -> None:
    wire = entry(0x31, "t", bytes.fromhex("07e80c1f173b3c002b0000"))
    assert single_attribute(wire).value == datetime(2024, 12, 31, 23, 59, 59, tzinfo=UTC)


def test_date_time_writer_truncates_to_deciseconds_and_rejects_naive() -> None:
    precise = datetime(2024, 1, 2, 3, 4, 5, 678_901, tzinfo=timezone(timedelta(hours=2)))
    wire = encode_attribute(Attribute.of("t", 0x31, precise))
    assert wire.endswith(bytes.fromhex("07e80102030405062b0200"))
    with pytest.raises(ValueError, match="naive"):
        encode_attribute(Attribute.of("t", 0x31, datetime(2024, 1, 2)))


def test_resolution_and_range() -> None:
    resolution = entry(0x32, "printer-resolution-default", bytes.fromhex("000002580000025803"))
    assert single_attribute(resolution).value == Resolution(600, 600, 3)
    assert roundtrip(Attribute.of("printer-resolution-default", 0x32, Resolution(600, 600))) == (
        resolution
    )
    dots_per_cm = Attribute.of("r", 0x32, Resolution(118, 236, 4))
    assert roundtrip(dots_per_cm).endswith(bytes.fromhex("00000076000000ec04"))

    span = entry(0x33, "copies-supported", bytes.fromhex("00000001000003e7"))
    assert single_attribute(span).value == IntRange(1, 999)
    negative = Attribute.of("x", 0x33, IntRange(-(2**31), 2**31 - 1))
    assert roundtrip(negative).endswith(bytes.fromhex("800000007fffffff"))


def test_one_set_of_mixing_integer_and_range() -> None:
    wire = (
        entry(0x21, "number-up-supported", bytes.fromhex("00000001"))
        + entry(0x33, "", bytes.fromhex("0000000200000004"))
        + entry(0x21, "", bytes.fromhex("fffffffe"))
    )
    attribute = single_attribute(wire)
    assert attribute.values == [(0x21, 1), (0x33, IntRange(2, 4)), (0x21, -2)]
    assert encode_attribute(attribute) == wire


def test_integer_enum_boolean() -> None:
    wire = (
        entry(0x23, "printer-state", bytes.fromhex("00000003"))
        + entry(0x22, "color-supported", b"\x01")
        + entry(0x22, "", b"\x00")
    )
    message, _ = decode_message(one_group(wire, group=GroupTag.PRINTER))
    state, color = message.groups[0].attributes
    assert state.values == [(0x23, 3)]
    assert color.values == [(0x22, True), (0x22, False)]
    assert encode_attributes([state, color]) == wire


@pytest.mark.parametrize("tag", [0x10, 0x12, 0x13, 0x15, 0x16, 0x17, 0x11, 0x1F])
def test_out_of_band_values(tag: int) -> None:
    wire = entry(tag, "printer-geo-location", b"")
    attribute = single_attribute(wire)
    assert attribute.values == [(tag, None)]
    assert attribute.is_out_of_band
    assert encode_attribute(attribute) == wire


def test_unassigned_out_of_band_tag_without_values() -> None:
    assert Attribute.of("x", 0x14).values == [(0x14, None)]


def test_out_of_band_content_is_ignored_like_cups() -> None:
    attribute = single_attribute(entry(0x13, "time-at-completed", b"junk"))
    assert attribute.values == [(0x13, None)]


def test_extension_and_unassigned_tags_stay_opaque() -> None:
    extension = entry(0x7F, "x-vendor", bytes.fromhex("40000001") + b"payload")
    unassigned = entry(0x4B, "y", b"\xff\x00") + entry(0xC3, "", b"")
    message, _ = decode_message(one_group(extension, unassigned))
    vendor, other = message.groups[0].attributes
    assert vendor.values == [(0x7F, bytes.fromhex("40000001") + b"payload")]
    assert other.values == [(0x4B, b"\xff\x00"), (0xC3, b"")]
    assert encode_attributes([vendor, other]) == extension + unassigned


def test_octet_string_and_string_syntaxes() -> None:
    wire = (
        entry(0x30, "printer-firmware-version", b"\x00\x01\xfe")
        + entry(0x41, "printer-info", "Drucker im Büro ✓".encode())
        + entry(0x44, "sides-supported", b"one-sided")
        + entry(0x42, "", b"custom")
        + entry(0x49, "document-format", b"application/pdf")
        + entry(0x46, "uri-scheme", b"ipp")
    )
    message, _ = decode_message(one_group(wire, group=GroupTag.PRINTER))
    assert [a.values for a in message.groups[0]] == [
        [(0x30, b"\x00\x01\xfe")],
        [(0x41, "Drucker im Büro ✓")],
        [(0x44, "one-sided"), (0x42, "custom")],
        [(0x49, "application/pdf")],
        [(0x46, "ipp")],
    ]
    assert encode_attributes(message.groups[0]) == wire


def test_nested_collections_three_deep_and_one_set_of_collections() -> None:
    innermost = Collection([Attribute.of("level", ValueTag.INTEGER, 3)])
    middle = Collection(
        [
            Attribute.of("level", ValueTag.INTEGER, 2),
            Attribute("inner", [(0x34, innermost), (0x34, Collection())]),
        ]
    )
    outer = Collection(
        [Attribute.of("middle", 0x34, middle), Attribute.of("names", 0x44, "a", "b")]
    )
    attribute = Attribute("outer-col", [(0x34, outer), (0x34, Collection())])
    wire = roundtrip(attribute)
    assert wire == (
        entry(0x34, "outer-col", b"")
        + entry(0x4A, "", b"middle")
        + entry(0x34, "", b"")
        + entry(0x4A, "", b"level")
        + entry(0x21, "", b"\x00\x00\x00\x02")
        + entry(0x4A, "", b"inner")
        + entry(0x34, "", b"")
        + entry(0x4A, "", b"level")
        + entry(0x21, "", b"\x00\x00\x00\x03")
        + entry(0x37, "", b"")
        + entry(0x34, "", b"")
        + entry(0x37, "", b"")
        + entry(0x37, "", b"")
        + entry(0x4A, "", b"names")
        + entry(0x44, "", b"a")
        + entry(0x44, "", b"b")
        + entry(0x37, "", b"")
        + entry(0x34, "", b"")
        + entry(0x37, "", b"")
    )


def test_repeated_groups_and_response_status_code() -> None:
    wire = (
        bytes.fromhex("0101 0400 7fffffff")
        + b"\x01"
        + entry(0x47, "attributes-charset", b"utf-8")
        + b"\x02"
        + entry(0x21, "job-id", b"\x00\x00\x00\x01")
        + b"\x02"
        + entry(0x21, "job-id", b"\x00\x00\x00\x02")
        + b"\x02\x03"
    )
    message, _ = decode_message(wire)
    assert (message.version, message.code, message.request_id) == (
        (1, 1),
        Status.CLIENT_ERROR_BAD_REQUEST,
        2**31 - 1,
    )
    assert [g.tag for g in message.groups] == [1, 2, 2, 2]
    assert [len(g) for g in message.groups_of(GroupTag.JOB)] == [1, 1, 0]
    assert encode_message(message) == wire


@pytest.mark.parametrize(("wire_id", "request_id"), [
    ("7fffffff", 2**31 - 1), ("80000000", -(2**31)), ("ffffffff", -1)])
def test_request_id_is_signed_both_ways(wire_id: str, request_id: int) -> None:
    # RFC 8010 3.1.1: a signed integer. Read as it is written, so that an answer can echo
    # any request-id a request carried (issue 9: 2^31 was read unsigned, written signed).
    wire = bytes.fromhex(f"0200 000b {wire_id}") + b"\x01" + entry(0x47, "c", b"x") + b"\x03"
    message, _ = decode_message(wire)
    assert message.request_id == request_id
    assert encode_message(message) == wire


def test_semantic_oddities_are_left_to_the_dispatcher() -> None:
    # version 9.9, request-id 0, job group before operation group: well formed, so accepted
    wire = bytes.fromhex("0909 0002 00000000") + b"\x02\x01" + entry(0x47, "c", b"x") + b"\x03"
    message, _ = decode_message(wire)
    assert message.version == (9, 9) and message.request_id == 0
    assert [g.tag for g in message.groups] == [2, 1]


@pytest.mark.parametrize(
    ("tag", "value", "error"),
    [
        (0x21, True, TypeError),
        (0x21, 2**31, ValueError),
        (0x22, 1, TypeError),
        (0x44, "naïve", ValueError),
        (0x41, b"bytes", TypeError),
        (0x30, "text", TypeError),
        (0x13, 0, TypeError),
        (0x32, Resolution(1, 1, 300), ValueError),
        (0x41, "x" * 32768, ValueError),
        (0x35, StringWithLanguage("x" * 32768, "en"), ValueError),
        (0x31, datetime(2024, 1, 1, tzinfo=timezone(timedelta(seconds=30))), ValueError),
        (0x37, None, ValueError),
        (0x34, "not a collection", TypeError),
        (0x05, None, ValueError),
    ],
)
def test_writer_rejects_unencodable_values(tag: int, value: Value, error: type[Exception]) -> None:
    with pytest.raises(error):
        encode_attribute(Attribute("bad", [(tag, value)]))


def test_writer_rejects_bad_structure() -> None:
    with pytest.raises(ValueError):
        encode_attribute(Attribute("empty", []))
    with pytest.raises(ValueError):
        encode_attribute(Attribute("", [(0x21, 1)]))
    with pytest.raises(ValueError):
        encode_attribute(Attribute.of("c", 0x34, Collection([Attribute("m", [])])))
    with pytest.raises(ValueError):
        encode_message(Message((2, 0), 0x0B, 1, [Group(GroupTag.END)]))
    with pytest.raises(ValueError):
        encode_message(Message((2, 0), 0x0B, 2**31))
